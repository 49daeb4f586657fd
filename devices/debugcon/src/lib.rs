//! Bochs/QEMU debug console (port 0xE9).
//!
//! Every byte the guest writes goes straight to the character backend. Reads return 0xE9, the
//! value Bochs and QEMU return, so that a guest can detect the console before using it.

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, CharBackend, ConfigError, Device,
    DeviceConfig, DeviceContext, NullBackend, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`DebugconState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The port Bochs and QEMU use.
pub const DEFAULT_PORT: u16 = 0xe9;

/// What a read of the port returns (the "console present" signature).
pub const READBACK: u8 = 0xe9;

/// Plugin descriptor. Options: `iobase` (default 0xE9).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "debugcon",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(Debugcon::from_config(config)?))
}

/// Guest-visible state of the debug console: there is none, the port only streams bytes.
/// The struct exists so that the console saves and restores like every other device.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct DebugconState {}

/// The debug console port.
///
/// ```
/// use nestor_debugcon::Debugcon;
/// use nestor_device::testing::{BufferBackend, FakeContext};
/// use nestor_device::Device;
///
/// let out = BufferBackend::new();
/// let mut con = Debugcon::new(0xe9, Box::new(out.clone()));
/// let mut ctx = FakeContext::new();
/// for b in b"hi\n" {
///     con.io_write(0xe9, 1, u32::from(*b), &mut ctx);
/// }
/// assert_eq!(out.output_string(), "hi\n");
/// assert_eq!(con.io_read(0xe9, 1, &mut ctx), 0xe9);
/// ```
pub struct Debugcon {
    state: DebugconState,
    port: u16,
    name: String,
    out: Box<dyn CharBackend>,
}

impl Debugcon {
    /// A debug console at `port` writing to `out`.
    #[must_use]
    pub fn new(port: u16, out: Box<dyn CharBackend>) -> Self {
        Self {
            state: DebugconState::default(),
            port,
            name: format!("debugcon@{port:x}"),
            out,
        }
    }

    /// Build from plugin options; output goes to the config's character backend (none: discarded).
    pub fn from_config(config: &mut DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&["iobase"])?;
        let port = config.number_in("iobase", u64::from(DEFAULT_PORT), 0, 0xffff)? as u16;
        let out = config
            .chardev
            .take()
            .unwrap_or_else(|| Box::new(NullBackend));
        Ok(Self::new(port, out))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &DebugconState {
        &self.state
    }
}

impl Snapshot for Debugcon {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Debugcon {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(self.port, 1)]
    }

    fn io_read(&mut self, port: u16, size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        read_bytewise(port, size, |p| if p == self.port { READBACK } else { 0xff })
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, byte| {
            if p == self.port {
                self.out.write(&[byte]);
                if byte == b'\n' {
                    self.out.flush();
                }
            }
        });
    }

    fn reset(&mut self) {
        self.state = DebugconState::default();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_device::testing::{BufferBackend, FakeContext};

    #[test]
    fn bytes_go_to_the_backend_and_lines_are_flushed() {
        let out = BufferBackend::new();
        let mut con = Debugcon::new(0xe9, Box::new(out.clone()));
        let mut ctx = FakeContext::new();
        for b in b"ok\nall\x00\xff" {
            con.io_write(0xe9, 1, u32::from(*b), &mut ctx);
        }
        assert_eq!(out.output(), b"ok\nall\x00\xff");
        assert_eq!(out.flushes(), 1);
    }

    #[test]
    fn reads_return_the_signature() {
        let mut con = Debugcon::new(0xe9, Box::new(NullBackend));
        let mut ctx = FakeContext::new();
        assert_eq!(con.io_read(0xe9, 1, &mut ctx), 0xe9);
        assert_eq!(con.io_read(0xe9, 2, &mut ctx), 0xffe9);
    }

    #[test]
    fn state_round_trips_and_restored_console_carries_on() {
        let out = BufferBackend::new();
        let a = Debugcon::new(0xe9, Box::new(NullBackend));
        let mut b = Debugcon::new(0xe9, Box::new(out.clone()));
        b.restore(&a.save().unwrap()).unwrap();
        assert_eq!(a.state(), b.state());
        b.io_write(0xe9, 1, u32::from(b'x'), &mut FakeContext::new());
        assert_eq!(out.output(), b"x");
        assert!(b.restore(&[1, 2, 3]).is_err());
    }

    #[test]
    fn config_is_validated() {
        let mut config = DeviceConfig::default();
        config.options.insert("iobase".into(), "0x402".into());
        let dev = (PLUGIN.create)(&mut config).unwrap();
        assert_eq!(dev.ports(), vec![PortRange::new(0x402, 1)]);
        assert_eq!(dev.name(), "debugcon@402");
        config.options.insert("irq".into(), "3".into());
        assert!((PLUGIN.create)(&mut config).is_err());
    }
}
