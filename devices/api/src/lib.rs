//! The boundary between Nestor's machine and its device models.
//!
//! A device model is its own crate. It exports one [`PluginDescriptor`], keeps every piece of
//! guest-visible state in one serde struct (saved with [`save_state`], restored with
//! [`restore_state`]), and sees the machine only through the [`DeviceContext`] it is handed.

mod bytewise;
mod chardev;
pub mod pci;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use bytewise::{read_bytewise, write_bytewise};
pub use chardev::{CharBackend, NullBackend};
pub use state::{restore_state, save_state, StateError};

use std::collections::BTreeMap;

/// An inclusive range of I/O ports claimed by a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub count: u16,
}

impl PortRange {
    #[must_use]
    pub const fn new(first: u16, count: u16) -> Self {
        Self { first, count }
    }

    #[must_use]
    pub fn contains(&self, port: u16) -> bool {
        port >= self.first && u32::from(port) < u32::from(self.first) + u32::from(self.count)
    }
}

/// A range of guest physical addresses decoded by a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRange {
    pub base: u64,
    pub len: u64,
}

impl MmioRange {
    #[must_use]
    pub const fn new(base: u64, len: u64) -> Self {
        Self { base, len }
    }

    #[must_use]
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.len
    }
}

/// Why a device asks the machine to stop running the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitRequest {
    /// isa-debug-exit: the process exit status the guest asked for.
    DebugExit(i32),
    /// The guest powered the machine off (ACPI, APM, Bochs shutdown port).
    PowerOff,
    /// The guest asked for a reset (keyboard controller, port 0xCF9, triple fault).
    Reset,
}

/// What the machine offers a device while it handles an access or a timer.
pub trait DeviceContext {
    /// Drive an interrupt line of the board (ISA IRQ 0..15 for the PC devices).
    fn set_irq(&mut self, line: u8, level: bool);
    /// Virtual time in nanoseconds since the machine started (deterministic in tests).
    fn now_ns(&self) -> u64;
    /// Bounds-checked DMA read of guest physical memory.
    fn dma_read(&mut self, paddr: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Bounds-checked DMA write of guest physical memory.
    fn dma_write(&mut self, paddr: u64, buf: &[u8]) -> Result<(), DmaError>;
    /// Ask the machine to stop the guest after the current instruction.
    fn request_exit(&mut self, why: ExitRequest);
    /// The device's [`Device::ports`] or [`Device::mmio_ranges`] changed (a BAR was moved,
    /// a window opened or closed): the machine asks again after this access.
    fn remap(&mut self);
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("DMA to guest physical {paddr:#x}+{len:#x} is outside guest RAM")]
pub struct DmaError {
    pub paddr: u64,
    pub len: usize,
}

/// Saving and restoring guest-visible state. Required of every device: no default bodies,
/// so a device that cannot be snapshotted does not compile.
pub trait Snapshot {
    /// The device's state struct, encoded with bincode together with its version.
    fn save(&self) -> Result<Vec<u8>, StateError>;
    /// Replace the device's state with a saved one; the version must match.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError>;
}

/// A device model as the machine drives it. Port and MMIO accesses carry their size in bytes
/// (1, 2 or 4); a read of a port the device does not decode returns all ones, as on the ISA bus.
pub trait Device: Snapshot + Send {
    /// Stable name, used as the snapshot key (e.g. "uart@3f8").
    fn name(&self) -> &str;
    /// The I/O ports the device decodes.
    fn ports(&self) -> Vec<PortRange>;
    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32;
    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext);
    /// Machine reset (power-on state of the device).
    fn reset(&mut self);
    /// Absolute virtual time (ns) at which the device wants [`Device::on_timer`]; `None` if idle.
    fn next_deadline_ns(&self) -> Option<u64>;
    /// Called once virtual time has reached the deadline the device asked for.
    fn on_timer(&mut self, ctx: &mut dyn DeviceContext);
    /// Guest physical ranges the device decodes. Most devices have none.
    fn mmio_ranges(&self) -> Vec<MmioRange> {
        Vec::new()
    }
    /// Read `data.len()` (1, 2, 4 or 8) bytes at absolute guest physical `addr`.
    fn mmio_read(&mut self, addr: u64, data: &mut [u8], ctx: &mut dyn DeviceContext) {
        let _ = (addr, ctx);
        data.fill(0xff);
    }
    fn mmio_write(&mut self, addr: u64, data: &[u8], ctx: &mut dyn DeviceContext) {
        let _ = (addr, data, ctx);
    }
    /// The device's PCI function, for the machine's configuration cycles. Most devices have none.
    /// The device as `Any`, for the machine's typed access to the inherent API of the few
    /// devices it drives directly (power button, firmware configuration, HPET routing).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
    fn pci(&mut self) -> Option<&mut dyn pci::PciFunction> {
        None
    }
}

/// What a plugin is built from: `key=value` options plus host resources the machine opened.
#[derive(Default)]
pub struct DeviceConfig {
    pub options: BTreeMap<String, String>,
    /// Character backend for devices that have one (UART, debug console); taken by the device.
    pub chardev: Option<Box<dyn CharBackend>>,
    /// Seconds since the Unix epoch at power-on (RTC start time; fixed in deterministic mode).
    pub start_time_unix: i64,
}

impl DeviceConfig {
    /// Parse an option as a number, accepting `0x` hex, with a clear error.
    pub fn number(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        let Some(text) = self.options.get(key) else {
            return Ok(default);
        };
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.map_err(|_| ConfigError::BadValue {
            key: key.to_string(),
            value: text.clone(),
        })
    }

    /// Parse an option as a number that must lie in `min..=max`.
    pub fn number_in(
        &self,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let value = self.number(key, default)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::OutOfRange {
                key: key.to_string(),
                value,
                min,
                max,
            })
        }
    }

    /// Refuse options the model does not know, so that a misspelt key is an error rather than
    /// silently ignored.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.options.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(ConfigError::UnknownOption(key.clone())),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("option {key}={value} is not valid")]
    BadValue { key: String, value: String },
    #[error("option {key}={value:#x} is outside {min:#x}..={max:#x}")]
    OutOfRange {
        key: String,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("unknown option {0}")]
    UnknownOption(String),
    #[error("{0}")]
    Other(String),
}

/// One per device crate: how the machine finds, names and builds the model.
pub struct PluginDescriptor {
    /// Stable model name ("uart16550", "pic8259", ...).
    pub name: &'static str,
    /// Version of the model's saved state; a restore of another version is refused.
    pub state_version: u32,
    pub create: fn(&mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> DeviceConfig {
        DeviceConfig {
            options: pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ..DeviceConfig::default()
        }
    }

    #[test]
    fn options_are_checked() {
        let c = config(&[("iobase", "0x2f8"), ("irq", "99")]);
        assert_eq!(c.number_in("iobase", 0, 0, 0xfff8), Ok(0x2f8));
        assert_eq!(c.number_in("missing", 5, 0, 7), Ok(5));
        assert!(matches!(
            c.number_in("irq", 4, 0, 15),
            Err(ConfigError::OutOfRange { value: 99, .. })
        ));
        assert_eq!(c.reject_unknown(&["iobase", "irq"]), Ok(()));
        assert_eq!(
            c.reject_unknown(&["iobase"]),
            Err(ConfigError::UnknownOption("irq".to_string()))
        );
    }
}
