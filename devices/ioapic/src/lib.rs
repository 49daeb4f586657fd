//! The I/O APIC: an Intel 82093AA-style interrupt router with 24 input pins.
//!
//! Registers are reached indirectly: the guest writes a register index to IOREGSEL (window
//! offset 0x00) and reads or writes it through IOWIN (offset 0x10). Version 0x20 parts (the
//! ICH's) also have an EOI register at offset 0x40. Indices: 0x00 ID, 0x01 version (maximum
//! redirection entry 23), 0x02 arbitration ID, 0x10 + 2n / 0x11 + 2n the low and high halves
//! of redirection entry n.
//!
//! The machine keeps the IOAPIC as a concrete type and wires it so:
//! - [`Ioapic::set_irq`] for every interrupt line: ISA IRQ n drives pin n, except IRQ0 (the
//!   PIT), which drives pin 2, as the ACPI MADT interrupt source override says; pin 0 may
//!   carry the 8259's INT output (virtual wire through the IOAPIC); PCI lines use pins 16-23;
//! - messages from [`Ioapic::take_messages`] go to every local APIC that matches them (one
//!   of them for lowest-priority delivery), after every call into the IOAPIC;
//! - level-triggered EOIs from the local APICs come back through [`Ioapic::end_of_interrupt`].
//!
//! Pin levels are logical (`true` = the source requests an interrupt): the polarity bit is
//! kept for the guest to read but does not invert the input, as in QEMU, because the board
//! models every line active-high.

#[cfg(test)]
mod tests;

pub use nestor_lapic::{ApicMessage, DeliveryMode, DestinationMode};

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, MmioRange,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`IoapicState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Where the chipset decodes the IOAPIC.
pub const DEFAULT_BASE: u64 = 0xfec0_0000;
/// The window the model decodes: one page (IOREGSEL, IOWIN and the EOI register inside).
pub const WINDOW_LEN: u64 = 0x1000;
/// Offsets in the window.
pub const IOREGSEL: u64 = 0x00;
pub const IOWIN: u64 = 0x10;
pub const EOI: u64 = 0x40;

/// Number of input pins and redirection entries.
pub const PINS: u8 = 24;

/// Register indices (written to IOREGSEL).
pub mod index {
    pub const ID: u8 = 0x00;
    pub const VERSION: u8 = 0x01;
    pub const ARBITRATION: u8 = 0x02;
    pub const REDIRECTION: u8 = 0x10;
}

/// Bits of a redirection entry.
pub mod entry {
    pub const DELIVERY_MODE_SHIFT: u32 = 8;
    pub const DEST_LOGICAL: u64 = 1 << 11;
    pub const DELIVERY_STATUS: u64 = 1 << 12;
    pub const ACTIVE_LOW: u64 = 1 << 13;
    pub const REMOTE_IRR: u64 = 1 << 14;
    pub const LEVEL: u64 = 1 << 15;
    pub const MASKED: u64 = 1 << 16;
    pub const DEST_SHIFT: u32 = 56;
    /// Bits software may write: vector, delivery and destination mode, polarity, trigger
    /// mode, mask, destination.
    pub const WRITABLE: u64 = 0xff00_0000_0001_afff;
}

/// Bound on undelivered messages: the machine drains them after every call, so only a
/// forgotten drain could reach it.
const MAX_MESSAGES: usize = 256;

/// Plugin descriptor. Options: `id` (APIC ID, 0..=15, default 0), `version` (0x11 for the
/// 82093AA, 0x20 for the ICH's IOAPIC with its EOI register; default 0x20).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "ioapic",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&["id", "version"])?;
    let id = config.number_in("id", 0, 0, 15)? as u8;
    let version = config.number_in("version", 0x20, 0x11, 0x20)? as u8;
    if version != 0x11 && version != 0x20 {
        return Err(ConfigError::Other(format!(
            "ioapic version {version:#x}: use 0x11 or 0x20"
        )));
    }
    let mut ioapic = Ioapic::new(version);
    ioapic.state.id = id;
    Ok(Box::new(ioapic))
}

/// Guest-visible state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IoapicState {
    /// Version register's low byte (0x11 or 0x20).
    pub version: u8,
    /// APIC ID (4 bits).
    pub id: u8,
    /// IOREGSEL.
    pub ioregsel: u8,
    /// Redirection entry of each pin, pin 0 first.
    pub redirection: Vec<u64>,
    /// Input levels, pin n in bit n.
    pub pins: u32,
    /// Messages sent and not yet taken by the machine.
    pub outbox: Vec<ApicMessage>,
}

impl IoapicState {
    /// The reset state: every entry masked, edge-triggered, vector 0.
    #[must_use]
    pub fn reset(version: u8) -> Self {
        Self {
            version,
            id: 0,
            ioregsel: 0,
            redirection: vec![entry::MASKED; usize::from(PINS)],
            pins: 0,
            outbox: Vec::new(),
        }
    }
}

/// The I/O APIC.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_ioapic::{Ioapic, DEFAULT_BASE, IOREGSEL, IOWIN};
///
/// let mut ioapic = Ioapic::new(0x20);
/// let mut ctx = FakeContext::new();
/// // Pin 4 (COM1): vector 0x34, fixed, physical destination APIC 0, unmasked.
/// ioapic.mmio_write(DEFAULT_BASE + IOREGSEL, &[0x18], &mut ctx);
/// ioapic.mmio_write(DEFAULT_BASE + IOWIN, &0x34u32.to_le_bytes(), &mut ctx);
/// ioapic.set_irq(4, true);
/// let messages = ioapic.take_messages();
/// assert_eq!(messages.len(), 1);
/// assert_eq!(messages[0].vector, 0x34);
/// assert_eq!(messages[0].dest, 0);
/// ```
pub struct Ioapic {
    state: IoapicState,
}

impl Ioapic {
    /// An IOAPIC in its reset state; `version` is 0x11 or 0x20.
    #[must_use]
    pub fn new(version: u8) -> Self {
        Self {
            state: IoapicState::reset(version),
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &IoapicState {
        &self.state
    }

    /// Drive input `pin` (0..=23; others are ignored). An edge-triggered entry sends a
    /// message on the rising edge unless masked (a masked edge is lost, as the datasheet
    /// says); a level-triggered one sends while the input is high and remote IRR is clear.
    pub fn set_irq(&mut self, pin: u8, level: bool) {
        if pin >= PINS {
            return;
        }
        let bit = 1u32 << pin;
        let rising = level && self.state.pins & bit == 0;
        if level {
            self.state.pins |= bit;
        } else {
            self.state.pins &= !bit;
        }
        let Some(&e) = self.state.redirection.get(usize::from(pin)) else {
            return;
        };
        if is_level(e) {
            self.service_level(pin);
        } else if rising && e & entry::MASKED == 0 {
            self.send(pin);
        }
    }

    /// A local APIC retired level-triggered `vector`: clear remote IRR of the entries with
    /// that vector, and send again for inputs that are still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8) {
        for pin in 0..PINS {
            let Some(e) = self.state.redirection.get_mut(usize::from(pin)) else {
                continue;
            };
            if *e as u8 == vector && *e & entry::REMOTE_IRR != 0 {
                *e &= !entry::REMOTE_IRR;
                self.service_level(pin);
            }
        }
    }

    /// Messages sent since the last call, oldest first.
    pub fn take_messages(&mut self) -> Vec<ApicMessage> {
        std::mem::take(&mut self.state.outbox)
    }

    /// Whether messages wait for [`Ioapic::take_messages`].
    #[must_use]
    pub fn has_messages(&self) -> bool {
        !self.state.outbox.is_empty()
    }

    /// A level-triggered entry whose input is high, unmasked and not awaiting EOI sends.
    fn service_level(&mut self, pin: u8) {
        let Some(&e) = self.state.redirection.get(usize::from(pin)) else {
            return;
        };
        let asserted = self.state.pins & (1 << pin) != 0;
        if asserted && is_level(e) && e & (entry::MASKED | entry::REMOTE_IRR) == 0 {
            self.send(pin);
        }
    }

    /// Send the message entry `pin` describes. Delivery is instantaneous, so the delivery
    /// status bit is never seen set; a level-triggered entry waits for EOI (remote IRR).
    fn send(&mut self, pin: u8) {
        let Some(e) = self.state.redirection.get_mut(usize::from(pin)) else {
            return;
        };
        let mode = match DeliveryMode::from_bits((*e >> entry::DELIVERY_MODE_SHIFT) as u32) {
            Some(DeliveryMode::StartUp) | None => return, // reserved encodings
            Some(mode) => mode,
        };
        let level = is_level(*e);
        if level {
            *e |= entry::REMOTE_IRR;
        }
        let message = ApicMessage {
            vector: *e as u8,
            delivery_mode: mode,
            dest_mode: if *e & entry::DEST_LOGICAL != 0 {
                DestinationMode::Logical
            } else {
                DestinationMode::Physical
            },
            dest: (*e >> entry::DEST_SHIFT) as u32,
            level_triggered: level,
        };
        if self.state.outbox.len() < MAX_MESSAGES {
            self.state.outbox.push(message);
        }
    }

    /// The register IOREGSEL selects, as IOWIN reads it.
    fn read_window(&self) -> u32 {
        let s = &self.state;
        match s.ioregsel {
            index::ID => u32::from(s.id & 0xf) << 24,
            index::VERSION => u32::from(s.version) | u32::from(PINS - 1) << 16,
            // The 82093AA loads its arbitration ID from the APIC ID; the ICH has no such
            // register.
            index::ARBITRATION if s.version == 0x11 => u32::from(s.id & 0xf) << 24,
            i @ 0x10..=0x3f => {
                let e = s
                    .redirection
                    .get(usize::from((i - index::REDIRECTION) / 2))
                    .copied()
                    .unwrap_or(0);
                if i & 1 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_window(&mut self, value: u32) {
        let i = self.state.ioregsel;
        match i {
            index::ID => self.state.id = ((value >> 24) & 0xf) as u8,
            0x10..=0x3f => {
                let pin = (i - index::REDIRECTION) / 2;
                let Some(e) = self.state.redirection.get_mut(usize::from(pin)) else {
                    return;
                };
                let written = if i & 1 == 0 {
                    (*e & !0xffff_ffff) | u64::from(value)
                } else {
                    (*e & 0xffff_ffff) | u64::from(value) << 32
                };
                *e = (written & entry::WRITABLE) | (*e & !entry::WRITABLE);
                if *e & entry::LEVEL == 0 {
                    // Remote IRR means nothing for an edge-triggered entry.
                    *e &= !entry::REMOTE_IRR;
                }
                // Unmasking a level-triggered entry with its input high sends at once.
                self.service_level(pin);
            }
            _ => {}
        }
    }

    fn read_offset(&self, offset: u64) -> u32 {
        match offset {
            IOREGSEL => u32::from(self.state.ioregsel),
            IOWIN => self.read_window(),
            _ => 0,
        }
    }

    fn write_offset(&mut self, offset: u64, value: u32) {
        match offset {
            IOREGSEL => self.state.ioregsel = value as u8,
            IOWIN => self.write_window(value),
            EOI if self.state.version >= 0x20 => self.end_of_interrupt(value as u8),
            _ => {}
        }
    }
}

/// Level-triggered with a delivery mode that waits for EOI (fixed or lowest priority); NMI,
/// SMI, INIT and ExtINT are edge-triggered whatever the trigger bit says.
fn is_level(e: u64) -> bool {
    let mode = DeliveryMode::from_bits((e >> entry::DELIVERY_MODE_SHIFT) as u32);
    e & entry::LEVEL != 0 && mode.is_some_and(DeliveryMode::carries_vector)
}

impl Snapshot for Ioapic {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: IoapicState = restore_state(STATE_VERSION, bytes)?;
        if state.redirection.len() != usize::from(PINS) {
            return Err(StateError::Decode(format!(
                "{} redirection entries, this model has {PINS}",
                state.redirection.len()
            )));
        }
        self.state = state;
        Ok(())
    }
}

impl Device for Ioapic {
    fn name(&self) -> &str {
        "ioapic"
    }

    fn ports(&self) -> Vec<PortRange> {
        Vec::new()
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}

    fn reset(&mut self) {
        // Input levels are board wires: they outlive the chip's reset.
        let pins = self.state.pins;
        self.state = IoapicState::reset(self.state.version);
        self.state.pins = pins;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn mmio_ranges(&self) -> Vec<MmioRange> {
        vec![MmioRange::new(DEFAULT_BASE, WINDOW_LEN)]
    }

    /// Registers are 32 bits wide at 16-byte strides; a narrower read returns part of one.
    fn mmio_read(&mut self, addr: u64, data: &mut [u8], _ctx: &mut dyn DeviceContext) {
        let offset = addr.wrapping_sub(DEFAULT_BASE);
        let bytes = self.read_offset(offset & !0xf).to_le_bytes();
        let start = (offset & 0xf) as usize;
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(start + i).copied().unwrap_or(0);
        }
    }

    /// A narrower write replaces those bytes of the register (IOREGSEL is one byte anyway).
    fn mmio_write(&mut self, addr: u64, data: &[u8], _ctx: &mut dyn DeviceContext) {
        let offset = addr.wrapping_sub(DEFAULT_BASE);
        let start = (offset & 0xf) as usize;
        if start >= 4 {
            return;
        }
        let base = offset & !0xf;
        let mut bytes = self.read_offset(base).to_le_bytes();
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = bytes.get_mut(start + i) {
                *slot = *b;
            }
        }
        self.write_offset(base, u32::from_le_bytes(bytes));
    }
}
