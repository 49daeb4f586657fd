//! `--demo NAME`: built-in guest programs that need no files, for trying the desktop
//! frontend (`nestor run --demo tetris`).

use clap::ValueEnum;
use nestor_machine::MachineConfig;

/// A built-in demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Demo {
    /// Falling blocks in VGA mode 13h: arrows or WASD move and turn, Space drops, Enter
    /// starts again after the game is over.
    Tetris,
}

impl Demo {
    /// The demo's 64 KiB firmware image.
    #[must_use]
    pub fn rom(self) -> &'static [u8] {
        match self {
            Demo::Tetris => nestor_roms::tetris(),
        }
    }
}

/// Make `config` run `demo` as its firmware. A demo is the whole guest, so it cannot be
/// combined with other firmware or a kernel.
pub fn apply(
    demo: Option<Demo>,
    other_guest: bool,
    config: &mut MachineConfig,
) -> anyhow::Result<()> {
    let Some(demo) = demo else {
        return Ok(());
    };
    anyhow::ensure!(
        !other_guest,
        "--demo is a whole guest: leave out --bios and --kernel"
    );
    config.rom = demo.rom().to_vec();
    config.bios = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tetris_replaces_the_firmware() {
        let mut config = MachineConfig::with_bios(nestor_bios::BiosConfig::default(), 4);
        apply(Some(Demo::Tetris), false, &mut config).expect("apply");
        assert_eq!(config.rom, nestor_roms::tetris());
        assert!(config.bios.is_none());
        assert!(apply(Some(Demo::Tetris), true, &mut config).is_err());
    }
}
