//! QEMU's `isa-debug-exit` device.
//!
//! A write of value `v` to any of its ports asks the machine to stop with process exit status
//! `(v << 1) | 1`, exactly as QEMU does (so a test program that writes 0 exits with 1 and no
//! guest can make the emulator exit with 0 by accident). Options: `iobase` (default 0xF4) and
//! `iosize` (1..=4 ports, default 4). Reads return all ones, as an undecoded ISA port.

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, ExitRequest,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`DebugExitState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Default port (as in the common `-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEFAULT_PORT: u16 = 0xf4;

/// Default number of ports decoded.
pub const DEFAULT_SIZE: u16 = 4;

/// Plugin descriptor. Options: `iobase` (default 0xF4), `iosize` (1..=4, default 4).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "isa-debug-exit",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(DebugExit::from_config(config)?))
}

/// Guest-visible state of the exit device: there is none. The struct exists so that the device
/// saves and restores like every other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct DebugExitState {}

/// The exit status QEMU's isa-debug-exit gives for a written value.
#[must_use]
pub fn exit_status(value: u32) -> i32 {
    ((value << 1) | 1) as i32
}

/// QEMU-compatible debug exit port.
///
/// ```
/// use nestor_debugexit::DebugExit;
/// use nestor_device::testing::FakeContext;
/// use nestor_device::{Device, ExitRequest};
///
/// let mut dev = DebugExit::new(0xf4, 4);
/// let mut ctx = FakeContext::new();
/// dev.io_write(0xf4, 1, 0x10, &mut ctx);
/// assert_eq!(ctx.exits, vec![ExitRequest::DebugExit(0x21)]);
/// ```
pub struct DebugExit {
    state: DebugExitState,
    port: u16,
    size: u16,
    name: String,
}

impl DebugExit {
    /// An exit device decoding `size` ports (clamped to 1..=4) from `port`.
    #[must_use]
    pub fn new(port: u16, size: u16) -> Self {
        Self {
            state: DebugExitState::default(),
            port,
            size: size.clamp(1, 4),
            name: format!("debugexit@{port:x}"),
        }
    }

    /// Build from plugin options.
    pub fn from_config(config: &DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&["iobase", "iosize"])?;
        let size = config.number_in("iosize", u64::from(DEFAULT_SIZE), 1, 4)? as u16;
        let last = 0x1_0000 - u64::from(size);
        let port = config.number_in("iobase", u64::from(DEFAULT_PORT), 0, last)? as u16;
        Ok(Self::new(port, size))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &DebugExitState {
        &self.state
    }
}

impl Snapshot for DebugExit {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for DebugExit {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(self.port, self.size)]
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if !PortRange::new(self.port, self.size).contains(port) {
            return;
        }
        let value = match size {
            1 => value & 0xff,
            2 => value & 0xffff,
            _ => value,
        };
        ctx.request_exit(ExitRequest::DebugExit(exit_status(value)));
    }

    fn reset(&mut self) {
        self.state = DebugExitState::default();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_device::testing::FakeContext;

    #[test]
    fn status_is_value_shifted_with_low_bit_set() {
        let mut dev = DebugExit::new(0xf4, 4);
        let mut ctx = FakeContext::new();
        dev.io_write(0xf4, 1, 0, &mut ctx);
        dev.io_write(0xf5, 1, 0x41, &mut ctx);
        dev.io_write(0xf4, 4, 0x8000_0000, &mut ctx);
        dev.io_write(0xf4, 1, 0x1ff, &mut ctx);
        dev.io_write(0xf8, 1, 3, &mut ctx);
        assert_eq!(
            ctx.exits,
            vec![
                ExitRequest::DebugExit(1),
                ExitRequest::DebugExit(0x83),
                ExitRequest::DebugExit(1),
                ExitRequest::DebugExit(0x1ff),
            ]
        );
        assert_eq!(dev.io_read(0xf4, 1, &mut ctx), u32::MAX);
    }

    #[test]
    fn state_round_trips_and_restored_device_carries_on() {
        let a = DebugExit::new(0x501, 2);
        let mut b = DebugExit::new(0x501, 2);
        b.restore(&a.save().unwrap()).unwrap();
        assert_eq!(a.state(), b.state());
        let mut ctx = FakeContext::new();
        b.io_write(0x502, 1, 2, &mut ctx);
        assert_eq!(ctx.exits, vec![ExitRequest::DebugExit(5)]);
    }

    #[test]
    fn config_is_validated() {
        let mut config = DeviceConfig::default();
        let dev = (PLUGIN.create)(&mut config).unwrap();
        assert_eq!(dev.ports(), vec![PortRange::new(0xf4, 4)]);
        config.options.insert("iosize".into(), "0x2".into());
        config.options.insert("iobase".into(), "0x501".into());
        let dev = (PLUGIN.create)(&mut config).unwrap();
        assert_eq!(dev.ports(), vec![PortRange::new(0x501, 2)]);
        for (key, bad) in [("iosize", "0"), ("iosize", "5"), ("iobase", "0xffff")] {
            let mut config = DeviceConfig::default();
            config.options.insert(key.into(), bad.into());
            assert!((PLUGIN.create)(&mut config).is_err(), "{key}={bad}");
        }
    }
}
