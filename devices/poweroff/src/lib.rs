//! Bochs APM shutdown port (0x8900).
//!
//! Bochs' BIOS powers the machine off by writing the ASCII string `Shutdown` to port 0x8900,
//! one byte at a time. When the whole string has arrived, the device asks the machine to power
//! off. Any other byte breaks the match; a byte `S` starts a new one. Our demo ROM and the
//! benchmarks power off this way, as they do under Bochs. Reads return all ones.

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, ExitRequest,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`PowerOffState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The Bochs shutdown port.
pub const DEFAULT_PORT: u16 = 0x8900;

/// The magic string.
pub const MAGIC: &[u8; 8] = b"Shutdown";

/// Plugin descriptor. Options: `iobase` (default 0x8900).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "bochs-shutdown",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(PowerOff::from_config(config)?))
}

/// Guest-visible state of the shutdown port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PowerOffState {
    /// How many leading bytes of [`MAGIC`] have been matched so far (0..8).
    pub matched: u8,
}

/// The shutdown port.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::{Device, ExitRequest};
/// use nestor_poweroff::PowerOff;
///
/// let mut dev = PowerOff::new(0x8900);
/// let mut ctx = FakeContext::new();
/// for b in b"Shutdown" {
///     dev.io_write(0x8900, 1, u32::from(*b), &mut ctx);
/// }
/// assert_eq!(ctx.exits, vec![ExitRequest::PowerOff]);
/// ```
pub struct PowerOff {
    state: PowerOffState,
    port: u16,
    name: String,
}

impl PowerOff {
    /// A shutdown port at `port`.
    #[must_use]
    pub fn new(port: u16) -> Self {
        Self {
            state: PowerOffState::default(),
            port,
            name: format!("poweroff@{port:x}"),
        }
    }

    /// Build from plugin options.
    pub fn from_config(config: &DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&["iobase"])?;
        let port = config.number_in("iobase", u64::from(DEFAULT_PORT), 0, 0xffff)? as u16;
        Ok(Self::new(port))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &PowerOffState {
        &self.state
    }

    fn feed(&mut self, byte: u8, ctx: &mut dyn DeviceContext) {
        let expected = MAGIC.get(usize::from(self.state.matched)).copied();
        self.state.matched = if expected == Some(byte) {
            self.state.matched + 1
        } else if byte == MAGIC[0] {
            1
        } else {
            0
        };
        if usize::from(self.state.matched) == MAGIC.len() {
            self.state.matched = 0;
            ctx.request_exit(ExitRequest::PowerOff);
        }
    }
}

impl Snapshot for PowerOff {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: PowerOffState = restore_state(STATE_VERSION, bytes)?;
        if usize::from(state.matched) >= MAGIC.len() {
            return Err(StateError::Decode(format!(
                "match position {} out of range",
                state.matched
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for PowerOff {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(self.port, 1)]
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        // A wide write puts its low byte on this port and the rest on the ports above it.
        if port == self.port {
            self.feed(value as u8, ctx);
        }
    }

    fn reset(&mut self) {
        self.state = PowerOffState::default();
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

    fn send(dev: &mut PowerOff, ctx: &mut FakeContext, bytes: &[u8]) {
        for b in bytes {
            dev.io_write(0x8900, 1, u32::from(*b), ctx);
        }
    }

    #[test]
    fn only_the_exact_string_powers_off() {
        let mut dev = PowerOff::new(0x8900);
        let mut ctx = FakeContext::new();
        send(&mut dev, &mut ctx, b"Shutdow");
        send(&mut dev, &mut ctx, b"x");
        send(&mut dev, &mut ctx, b"n");
        send(&mut dev, &mut ctx, b"shutdown SHUTDOWN");
        assert!(ctx.exits.is_empty());
        send(&mut dev, &mut ctx, b"ShutShutdown");
        assert_eq!(ctx.exits, vec![ExitRequest::PowerOff]);
        send(&mut dev, &mut ctx, b"SShutdown");
        assert_eq!(ctx.exits.len(), 2);
    }

    #[test]
    fn other_ports_and_wide_writes() {
        let mut dev = PowerOff::new(0x8900);
        let mut ctx = FakeContext::new();
        for b in b"Shutdown" {
            dev.io_write(0x8901, 1, u32::from(*b), &mut ctx);
        }
        assert!(ctx.exits.is_empty());
        // A 16-bit write of "Sh" puts only 'S' on 0x8900.
        dev.io_write(0x8900, 2, u32::from(u16::from_le_bytes(*b"Sh")), &mut ctx);
        assert_eq!(dev.state().matched, 1);
        assert_eq!(dev.io_read(0x8900, 1, &mut ctx), u32::MAX);
    }

    #[test]
    fn state_round_trips_and_restored_port_carries_on() {
        let mut ctx = FakeContext::new();
        let mut a = PowerOff::new(0x8900);
        send(&mut a, &mut ctx, b"Shut");
        let mut b = PowerOff::new(0x8900);
        b.restore(&a.save().unwrap()).unwrap();
        assert_eq!(a.state(), b.state());
        let mut ctx_b = FakeContext::new();
        send(&mut a, &mut ctx, b"down");
        send(&mut b, &mut ctx_b, b"down");
        assert_eq!(ctx.exits, ctx_b.exits);
        assert_eq!(ctx_b.exits, vec![ExitRequest::PowerOff]);
        let bad = save_state(STATE_VERSION, &PowerOffState { matched: 200 }).unwrap();
        assert!(b.restore(&bad).is_err());
    }

    #[test]
    fn config_is_validated() {
        let mut config = DeviceConfig::default();
        assert_eq!(
            (PLUGIN.create)(&mut config).unwrap().ports(),
            vec![PortRange::new(0x8900, 1)]
        );
        config.options.insert("iobase".into(), "-1".into());
        assert!((PLUGIN.create)(&mut config).is_err());
    }
}
