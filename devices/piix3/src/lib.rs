//! Intel 82371SB (PIIX3) function 0: the PCI-to-ISA bridge (PCI 00:01.0, 8086:7000).
//!
//! The bridge's own ISA devices (PIC, PIT, RTC, DMA, ELCR at 0x4D0/0x4D1) are separate models;
//! this crate keeps the bridge's configuration space and its reset control register:
//! - PIRQ route control 0x60-0x63 (PIRQA..PIRQD): bit 7 disables routing, bits 3:0 name the ISA
//!   IRQ. [`Piix3::pirq_route`] (or [`decode_pirq_route`] on bytes read through config space)
//!   is what the machine's interrupt routing follows.
//! - the other registers firmware programs (I/O recovery, X-Bus chip select, top of memory,
//!   motherboard IRQ and DMA routes, APIC base relocation, SMI control), stored as written;
//! - the reset control register at port 0xCF9: a write with bit 2 (RCPU) set asks the machine
//!   for a reset (bit 1, SRST, says hard rather than soft reset: both reset the machine here).

#[cfg(test)]
mod tests;

use nestor_device::pci::{PciConfig, PciFunction, PciId, PciSlot, MULTI_FUNCTION};
use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, ExitRequest,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`Piix3State`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x7000;
pub const DEFAULT_SLOT: PciSlot = PciSlot::new(0, 1, 0);

/// The reset control register's port.
pub const RESET_CONTROL_PORT: u16 = 0xcf9;
/// RCR bits.
pub const RCR_SYSTEM_RESET: u8 = 0x02;
pub const RCR_RESET_CPU: u8 = 0x04;

/// First PIRQ route control register (PIRQA); PIRQD is at 0x63.
pub const PIRQ_ROUTE: u16 = 0x60;
/// Route control bit 7: the PIRQ is not routed to any ISA IRQ.
pub const PIRQ_DISABLE: u8 = 0x80;

/// Plugin descriptor. Options: `slot`, `function` (default 00:01.0).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "piix3",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(Piix3::from_config(config)?))
}

/// The ISA IRQ a PIRQ route control byte selects; `None` when routing is disabled or the IRQ
/// is one the PIIX3 reserves (0-2, 8, 13).
#[must_use]
pub fn decode_pirq_route(value: u8) -> Option<u8> {
    let irq = value & 0x0f;
    let routable = !matches!(irq, 0..=2 | 8 | 13);
    (value & PIRQ_DISABLE == 0 && routable).then_some(irq)
}

/// Guest-visible state of the ISA bridge function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Piix3State {
    pub pci: PciConfig,
    /// Reset control register (port 0xCF9): the reset type bit as last written.
    pub reset_control: u8,
}

/// The PIIX3 ISA bridge function.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::{Device, ExitRequest};
/// use nestor_piix3::Piix3;
///
/// let mut bridge = Piix3::new();
/// let mut ctx = FakeContext::new();
/// bridge.pci().unwrap().config_write(0x60, 4, 0x8080_0b0a, &mut ctx);
/// assert_eq!(bridge.pirq_route(0), Some(10));
/// assert_eq!(bridge.pirq_route(1), Some(11));
/// assert_eq!(bridge.pirq_route(2), None);
/// bridge.io_write(0xcf9, 1, 0x06, &mut ctx); // hard reset, as Linux's reboot=pci does
/// assert_eq!(ctx.exits, vec![ExitRequest::Reset]);
/// ```
pub struct Piix3 {
    state: Piix3State,
    slot: PciSlot,
}

impl Default for Piix3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3 {
    /// The bridge at 00:01.0 in its power-on state.
    #[must_use]
    pub fn new() -> Self {
        Self::at(DEFAULT_SLOT)
    }

    #[must_use]
    pub fn at(slot: PciSlot) -> Self {
        Self {
            state: Piix3State {
                pci: power_on_config(),
                reset_control: 0,
            },
            slot,
        }
    }

    /// Build from plugin options.
    pub fn from_config(config: &DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&PciSlot::OPTIONS)?;
        Ok(Self::at(PciSlot::from_config(config, DEFAULT_SLOT)?))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &Piix3State {
        &self.state
    }

    /// The ISA IRQ PIRQ`n` (0 = PIRQA .. 3 = PIRQD) is routed to, if any.
    #[must_use]
    pub fn pirq_route(&self, n: u8) -> Option<u8> {
        if n > 3 {
            return None;
        }
        decode_pirq_route(self.state.pci.byte(PIRQ_ROUTE + u16::from(n)))
    }

    fn write_reset_control(&mut self, value: u8, ctx: &mut dyn DeviceContext) {
        self.state.reset_control = value & RCR_SYSTEM_RESET;
        if value & RCR_RESET_CPU != 0 {
            ctx.request_exit(ExitRequest::Reset);
        }
    }
}

/// The configuration space at power-on (82371SB datasheet defaults).
fn power_on_config() -> PciConfig {
    let mut id = PciId::new(VENDOR_ID, DEVICE_ID, 0x06_01_00);
    id.header_type = MULTI_FUNCTION;
    let mut c = PciConfig::new(&id);
    // I/O, memory and bus master are hardwired on; only special cycles and SERR# are writable.
    c.set_word(0x04, 0x0007);
    c.set_write_mask(0x04, &[0x08, 0x01]);
    c.set_word(0x06, 0x0200);
    let registers: [(u16, u8, u8); 20] = [
        (0x4c, 0x4d, 0x7f), // IORT: ISA I/O recovery timer
        (0x4e, 0x03, 0xff), // XBCS: X-Bus chip selects
        (0x4f, 0x00, 0x03),
        (0x60, 0x80, 0x8f), // PIRQRC[A..D]
        (0x61, 0x80, 0x8f),
        (0x62, 0x80, 0x8f),
        (0x63, 0x80, 0x8f),
        (0x69, 0x02, 0xfe), // TOM: top of memory
        (0x6a, 0x00, 0xff), // MSTAT: miscellaneous status
        (0x6b, 0x00, 0x87),
        (0x70, 0x80, 0xcf), // MBIRQ0, MBIRQ1: motherboard IRQ routes
        (0x71, 0x80, 0xcf),
        (0x76, 0x04, 0x87), // MBDMA0, MBDMA1: motherboard DMA routes
        (0x77, 0x04, 0x87),
        (0x78, 0x02, 0xff), // PCSC: programmable chip select
        (0x79, 0x00, 0xff),
        (0x80, 0x00, 0x7f), // APICBASE: IOAPIC base relocation
        (0x82, 0x00, 0x0f), // DLC: deterministic latency control
        (0xa0, 0x08, 0x1f), // SMICNTL
        (0xa8, 0x0f, 0xff), // FTMR: fast-off timer
    ];
    for (offset, value, mask) in registers {
        c.set_byte(offset, value);
        c.set_write_mask(offset, &[mask]);
    }
    // SMIEN, SEE (system event enable), SMIREQ and the clock scale timers.
    c.set_write_mask(0xa2, &[0xff, 0x01, 0xff, 0xff, 0xff, 0xff]);
    c.set_write_mask(0xaa, &[0xff, 0x01, 0xff, 0, 0xff]);
    c
}

impl PciFunction for Piix3 {
    fn pci_slot(&self) -> PciSlot {
        self.slot
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.state.pci.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32, _ctx: &mut dyn DeviceContext) {
        // No BARs: a config write never moves the bridge's decoding.
        self.state.pci.write(offset, size, value);
    }
}

impl Snapshot for Piix3 {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: Piix3State = restore_state(STATE_VERSION, bytes)?;
        state.pci.validate()?;
        self.state = state;
        Ok(())
    }
}

impl Device for Piix3 {
    fn name(&self) -> &str {
        "piix3"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(RESET_CONTROL_PORT, 1)]
    }

    fn io_read(&mut self, port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        match port {
            RESET_CONTROL_PORT => u32::from(self.state.reset_control),
            _ => u32::MAX,
        }
    }

    fn io_write(&mut self, port: u16, _size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if port == RESET_CONTROL_PORT {
            self.write_reset_control(value as u8, ctx);
        }
    }

    fn reset(&mut self) {
        self.state = Piix3State {
            pci: power_on_config(),
            reset_control: 0,
        };
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn pci(&mut self) -> Option<&mut dyn PciFunction> {
        Some(self)
    }
}
