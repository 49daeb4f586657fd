//! Sound and gamepad for `nestor run`: `--audio-wav` records the guest's sound, `--audio`
//! plays it on the host, `--gamepad` feeds the game port from the host's pads.

use clap::{Args, ValueEnum};
use nestor_machine::{ClockMode, Machine};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostUse {
    /// Use the host's device when time is real time (not with --deterministic).
    Auto,
    /// Use the host's device if there is one.
    Host,
    /// Never touch the host's device.
    None,
}

#[derive(Args, Debug)]
pub struct AudioArgs {
    /// Record what the guest plays as a 16-bit stereo WAV at 48 kHz; samples are placed by
    /// virtual time, so a --deterministic run writes the same file every time.
    #[arg(long, value_name = "PATH.wav")]
    audio_wav: Option<PathBuf>,
    /// Play the guest's sound on the host's sound card (cpal). Without one it is discarded.
    #[arg(long, value_enum, default_value_t = HostUse::Auto)]
    audio: HostUse,
    /// Feed the game port (0x201) from the host's gamepads (gilrs).
    #[arg(long, value_enum, default_value_t = HostUse::Auto)]
    gamepad: HostUse,
}

/// Host resources attached to a machine; dropping it stops them.
pub struct AudioSession {
    _gamepad: Option<nestor_audio::GamepadThread>,
}

fn wanted(choice: HostUse, clock: ClockMode) -> bool {
    match choice {
        HostUse::Auto => clock == ClockMode::Realtime,
        HostUse::Host => true,
        HostUse::None => false,
    }
}

/// Attach the WAV recorder, host playback and gamepads the flags ask for.
pub fn attach(machine: &mut Machine, args: &AudioArgs) -> anyhow::Result<AudioSession> {
    let clock = machine.board.clock.mode();
    if let Some(path) = &args.audio_wav {
        let wav = nestor_audio::WavWriter::create(path)
            .map_err(|e| anyhow::anyhow!("cannot record audio to {}: {e}", path.display()))?;
        machine.audio.add_sink(Box::new(wav));
    }
    if wanted(args.audio, clock) {
        if let Some(out) = nestor_audio::open_host_output() {
            machine.audio.add_sink(Box::new(out));
        }
    }
    let mut gamepad = None;
    if wanted(args.gamepad, clock) {
        if let Some(port) = machine.board.device_mut::<nestor_gameport::Gameport>() {
            gamepad = nestor_audio::spawn_gamepad_thread(port.input());
        }
    }
    Ok(AudioSession { _gamepad: gamepad })
}

/// The run ended: everything up to the machine's current virtual time goes to the sinks.
pub fn finish(machine: &Machine) {
    let now = machine.board.clock.now_ns(machine.vcpu.retired());
    machine.audio.finish(nestor_sound::frame_at_ns(now));
}
