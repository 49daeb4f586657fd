//! POST diagnostic port (port 0x80).
//!
//! Firmware writes a progress code to port 0x80 at each step of its power-on self test. Each
//! byte written is logged to the device's character backend as two uppercase hex digits and a
//! newline (this is what `--post-log PATH` records). Reads return the last value written, as
//! many chipsets latch it.

use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, CharBackend, ConfigError, Device,
    DeviceConfig, DeviceContext, NullBackend, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`PostState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The standard POST port of a PC.
pub const DEFAULT_PORT: u16 = 0x80;

/// Plugin descriptor. Options: `iobase` (default 0x80).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "post",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(PostPort::from_config(config)?))
}

/// Guest-visible state of the POST port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PostState {
    /// The last code written (read back by the guest).
    pub last_code: u8,
}

/// The POST code port.
///
/// ```
/// use nestor_device::testing::{BufferBackend, FakeContext};
/// use nestor_device::Device;
/// use nestor_post::PostPort;
///
/// let log = BufferBackend::new();
/// let mut post = PostPort::new(0x80, Box::new(log.clone()));
/// let mut ctx = FakeContext::new();
/// post.io_write(0x80, 1, 0x2a, &mut ctx);
/// assert_eq!(log.output_string(), "2A\n");
/// assert_eq!(post.io_read(0x80, 1, &mut ctx), 0x2a);
/// ```
pub struct PostPort {
    state: PostState,
    port: u16,
    name: String,
    log: Box<dyn CharBackend>,
}

impl PostPort {
    /// A POST port at `port` logging to `log`.
    #[must_use]
    pub fn new(port: u16, log: Box<dyn CharBackend>) -> Self {
        Self {
            state: PostState::default(),
            port,
            name: format!("post@{port:x}"),
            log,
        }
    }

    /// Build from plugin options; the log is the config's character backend (none: discarded).
    pub fn from_config(config: &mut DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&["iobase"])?;
        let port = config.number_in("iobase", u64::from(DEFAULT_PORT), 0, 0xffff)? as u16;
        let log = config
            .chardev
            .take()
            .unwrap_or_else(|| Box::new(NullBackend));
        Ok(Self::new(port, log))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &PostState {
        &self.state
    }

    fn write_code(&mut self, code: u8) {
        self.state.last_code = code;
        let text = format!("{code:02X}\n");
        self.log.write(text.as_bytes());
        self.log.flush();
    }
}

impl Snapshot for PostPort {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for PostPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(self.port, 1)]
    }

    fn io_read(&mut self, port: u16, size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        read_bytewise(port, size, |p| {
            if p == self.port {
                self.state.last_code
            } else {
                0xff
            }
        })
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, byte| {
            if p == self.port {
                self.write_code(byte);
            }
        });
    }

    fn reset(&mut self) {
        self.state = PostState::default();
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
    fn codes_are_logged_as_hex_lines() {
        let log = BufferBackend::new();
        let mut post = PostPort::new(0x80, Box::new(log.clone()));
        let mut ctx = FakeContext::new();
        for code in [0x00, 0x0f, 0xa5, 0xff] {
            post.io_write(0x80, 1, code, &mut ctx);
        }
        assert_eq!(log.output_string(), "00\n0F\nA5\nFF\n");
        assert_eq!(post.io_read(0x80, 1, &mut ctx), 0xff);
    }

    #[test]
    fn wide_accesses_touch_only_port_0x80() {
        let log = BufferBackend::new();
        let mut post = PostPort::new(0x80, Box::new(log.clone()));
        let mut ctx = FakeContext::new();
        post.io_write(0x80, 2, 0x1234, &mut ctx);
        assert_eq!(log.output_string(), "34\n");
        assert_eq!(post.io_read(0x80, 2, &mut ctx), 0xff34);
    }

    #[test]
    fn state_round_trips_and_restored_port_carries_on() {
        let mut ctx = FakeContext::new();
        let mut a = PostPort::new(0x80, Box::new(NullBackend));
        a.io_write(0x80, 1, 0x42, &mut ctx);
        let mut b = PostPort::new(0x80, Box::new(NullBackend));
        b.restore(&a.save().unwrap()).unwrap();
        assert_eq!(a.state(), b.state());
        assert_eq!(b.io_read(0x80, 1, &mut ctx), 0x42);
        a.io_write(0x80, 1, 7, &mut ctx);
        b.io_write(0x80, 1, 7, &mut ctx);
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn config_is_validated() {
        let mut config = DeviceConfig::default();
        let dev = (PLUGIN.create)(&mut config).unwrap();
        assert_eq!(dev.ports(), vec![PortRange::new(0x80, 1)]);
        config.options.insert("iobase".into(), "0x10000".into());
        assert!((PLUGIN.create)(&mut config).is_err());
        config.options.insert("iobase".into(), "eighty".into());
        assert!((PLUGIN.create)(&mut config).is_err());
    }
}
