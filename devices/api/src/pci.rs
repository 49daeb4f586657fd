//! PCI functions: how a device model exposes a PCI configuration space, and the config-space
//! logic every model shares.
//!
//! A device with a PCI function keeps a [`PciConfig`] in its state struct and returns itself as
//! a [`PciFunction`] from [`crate::Device::pci`]. The machine owns configuration mechanism #1
//! (ports 0xCF8/0xCFC, decoded with [`ConfigAddress`]) and forwards config cycles for bus 0 to
//! the function at the addressed [`PciSlot`]. BARs need no routing of their own: when
//! [`PciConfig::write`] reports that decoding changed, the device calls
//! [`crate::DeviceContext::remap`] and lists its BAR windows in its ordinary `ports()` /
//! `mmio_ranges()` (see [`PciConfig::io_bars`] and [`PciConfig::mmio_bars`]).
//!
//! ```
//! use nestor_device::pci::{Bar, PciConfig, PciId};
//!
//! let mut pci = PciConfig::new(&PciId::new(0x8086, 0x100e, 0x02_00_00));
//! pci.add_bar(0, Bar::mem32(0x2_0000)).unwrap();
//! pci.write(0x10, 4, 0xffff_ffff); // BAR sizing: all ones in,
//! assert_eq!(pci.read(0x10, 4), 0xfffe_0000); // the size mask back.
//! pci.write(0x10, 4, 0xfebc_0000);
//! assert_eq!(pci.bar_address(0), None, "memory decoding is off");
//! assert!(pci.write(0x04, 2, 0x0002), "decoding changed: the device calls ctx.remap()");
//! assert_eq!(pci.bar_address(0), Some(0xfebc_0000));
//! ```

#[cfg(test)]
mod tests;

use crate::{ConfigError, DeviceConfig, DeviceContext, MmioRange, PortRange, StateError};
use serde::{Deserialize, Serialize};

/// Size of a conventional PCI configuration space.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Offsets of the type-0 header registers.
pub mod reg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const DEVICE_ID: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const STATUS: u16 = 0x06;
    pub const REVISION: u16 = 0x08;
    pub const CLASS_CODE: u16 = 0x09;
    pub const CACHE_LINE_SIZE: u16 = 0x0c;
    pub const LATENCY_TIMER: u16 = 0x0d;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BAR0: u16 = 0x10;
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
    pub const SUBSYSTEM_ID: u16 = 0x2e;
    pub const ROM_ADDRESS: u16 = 0x30;
    pub const CAPABILITIES: u16 = 0x34;
    pub const INTERRUPT_LINE: u16 = 0x3c;
    pub const INTERRUPT_PIN: u16 = 0x3d;
    /// First byte after the standard header: device-specific registers and capabilities.
    pub const DEVICE_SPECIFIC: u16 = 0x40;
}

/// Command register bits.
pub mod command {
    pub const IO: u16 = 0x0001;
    pub const MEMORY: u16 = 0x0002;
    pub const BUS_MASTER: u16 = 0x0004;
    pub const SPECIAL_CYCLES: u16 = 0x0008;
    pub const PARITY: u16 = 0x0040;
    pub const SERR: u16 = 0x0100;
    pub const INTX_DISABLE: u16 = 0x0400;
    /// What a guest may change in a plain function (QEMU's choice plus parity and SERR#).
    pub const DEFAULT_WRITABLE: u16 = IO | MEMORY | BUS_MASTER | PARITY | SERR | INTX_DISABLE;
}

/// Status register bits.
pub mod status {
    pub const INTERRUPT: u16 = 0x0008;
    pub const CAPABILITIES: u16 = 0x0010;
    pub const FAST_BACK_TO_BACK: u16 = 0x0080;
    pub const MASTER_DATA_PARITY: u16 = 0x0100;
    pub const DEVSEL_MEDIUM: u16 = 0x0200;
    pub const SIGNALED_TARGET_ABORT: u16 = 0x0800;
    pub const RECEIVED_TARGET_ABORT: u16 = 0x1000;
    pub const RECEIVED_MASTER_ABORT: u16 = 0x2000;
    pub const SIGNALED_SYSTEM_ERROR: u16 = 0x4000;
    pub const DETECTED_PARITY: u16 = 0x8000;
    /// The error bits: set by the device, cleared by writing 1.
    pub const WRITE_1_TO_CLEAR: u16 = MASTER_DATA_PARITY
        | SIGNALED_TARGET_ABORT
        | RECEIVED_TARGET_ABORT
        | RECEIVED_MASTER_ABORT
        | SIGNALED_SYSTEM_ERROR
        | DETECTED_PARITY;
}

/// Header type bit 7: the device has more functions than function 0.
pub const MULTI_FUNCTION: u8 = 0x80;

/// BAR number of the expansion ROM base address register (offset 0x30).
pub const ROM_BAR: u8 = 6;

/// Board interrupt lines `PIRQ_LINE_BASE..PIRQ_LINE_BASE + 4` are the PCI interrupt request
/// lines PIRQA..PIRQD. A PCI device drives the line [`intx_line`] gives it; the machine routes
/// each PIRQ to an ISA IRQ through the PIIX3's route registers (and to IOAPIC input 16 + n).
pub const PIRQ_LINE_BASE: u8 = 16;

/// The board line for interrupt pin `pin` (1 = INTA# .. 4 = INTD#) of the device at `slot`,
/// wired as on QEMU's i440FX board and in SeaBIOS's tables: PIRQ[(device + pin - 2) mod 4].
#[must_use]
pub fn intx_line(slot: PciSlot, pin: u8) -> Option<u8> {
    if !(1..=4).contains(&pin) {
        return None;
    }
    let pirq = (slot.device.wrapping_add(pin).wrapping_sub(2)) & 3;
    Some(PIRQ_LINE_BASE + pirq)
}

/// Where a function sits on the PCI bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciSlot {
    pub bus: u8,
    /// 0..=31
    pub device: u8,
    /// 0..=7
    pub function: u8,
}

impl PciSlot {
    /// The `DeviceConfig` options [`PciSlot::from_config`] reads.
    pub const OPTIONS: [&'static str; 2] = ["slot", "function"];

    #[must_use]
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Self {
            bus,
            device: device & 31,
            function: function & 7,
        }
    }

    /// Slot on bus 0 from the options `slot` (device number, 0..=31) and `function` (0..=7),
    /// falling back to `default` for an option not given.
    pub fn from_config(config: &DeviceConfig, default: PciSlot) -> Result<Self, ConfigError> {
        let device = config.number_in("slot", u64::from(default.device), 0, 31)? as u8;
        let function = config.number_in("function", u64::from(default.function), 0, 7)? as u8;
        Ok(Self::new(0, device, function))
    }

    /// Device and function as one byte (the "devfn" of Linux and SeaBIOS).
    #[must_use]
    pub const fn devfn(self) -> u8 {
        (self.device << 3) | self.function
    }
}

impl std::fmt::Display for PciSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// The value of the configuration address register (port 0xCF8) of mechanism #1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigAddress(pub u32);

impl ConfigAddress {
    /// The address register; it takes 32-bit accesses only.
    pub const PORT: u16 = 0xcf8;
    /// The data window: 0xCFC..=0xCFF, any size.
    pub const DATA_PORT: u16 = 0xcfc;
    const ENABLE: u32 = 0x8000_0000;
    /// Bits 30:24 and 1:0 are reserved on the i440FX and read back as 0.
    const IMPLEMENTED: u32 = 0x80ff_fffc;

    /// What a 32-bit write to 0xCF8 stores.
    #[must_use]
    pub const fn from_register(value: u32) -> Self {
        Self(value & Self::IMPLEMENTED)
    }

    #[must_use]
    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    #[must_use]
    pub const fn slot(self) -> PciSlot {
        PciSlot::new(
            (self.0 >> 16) as u8,
            (self.0 >> 11) as u8,
            (self.0 >> 8) as u8,
        )
    }

    /// The dword-aligned register number.
    #[must_use]
    pub const fn register(self) -> u8 {
        (self.0 as u8) & 0xfc
    }

    /// The function and config offset a data-port access at `port` (0xCFC..=0xCFF) reaches;
    /// `None` while the enable bit is clear.
    #[must_use]
    pub fn target(self, port: u16) -> Option<(PciSlot, u16)> {
        self.enabled()
            .then(|| (self.slot(), u16::from(self.register()) + (port & 3)))
    }
}

/// What a PCI configuration space is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciId {
    pub vendor: u16,
    pub device: u16,
    /// Base class, subclass and programming interface: 0xBBSSPP.
    pub class: u32,
    pub revision: u8,
    pub subsystem_vendor: u16,
    pub subsystem: u16,
    /// 0 for a plain function; [`MULTI_FUNCTION`] for function 0 of a multi-function device.
    pub header_type: u8,
    /// 0 = no interrupt pin, 1..=4 = INTA#..INTD#.
    pub interrupt_pin: u8,
}

impl PciId {
    /// A single-function type-0 device with no subsystem ID and no interrupt pin.
    #[must_use]
    pub const fn new(vendor: u16, device: u16, class: u32) -> Self {
        Self {
            vendor,
            device,
            class,
            revision: 0,
            subsystem_vendor: 0,
            subsystem: 0,
            header_type: 0,
            interrupt_pin: 0,
        }
    }
}

/// The address space a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarKind {
    /// I/O ports; decoded in the 64 KiB port space (the upper 16 bits read as 0).
    Io,
    Memory32,
    /// Takes this BAR and the next one (the upper 32 bits).
    Memory64,
    /// The expansion ROM BAR at 0x30 (bit 0 enables decoding).
    Rom,
}

/// A base address register as a device model declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub kind: BarKind,
    /// Bytes decoded; a power of two.
    pub size: u64,
    pub prefetchable: bool,
}

impl Bar {
    #[must_use]
    pub const fn io(size: u64) -> Self {
        Self::of(BarKind::Io, size)
    }
    #[must_use]
    pub const fn mem32(size: u64) -> Self {
        Self::of(BarKind::Memory32, size)
    }
    #[must_use]
    pub const fn mem64(size: u64) -> Self {
        Self::of(BarKind::Memory64, size)
    }
    #[must_use]
    pub const fn rom(size: u64) -> Self {
        Self::of(BarKind::Rom, size)
    }
    /// The same BAR, marked prefetchable (memory BARs only).
    #[must_use]
    pub const fn prefetchable(self) -> Self {
        Self {
            prefetchable: true,
            ..self
        }
    }
    const fn of(kind: BarKind, size: u64) -> Self {
        Self {
            kind,
            size,
            prefetchable: false,
        }
    }

    /// Smallest and largest size the register format allows.
    fn size_limits(&self) -> (u64, u64) {
        match self.kind {
            BarKind::Io => (4, 1 << 16),
            BarKind::Memory32 => (16, 1 << 31),
            BarKind::Memory64 => (16, 1 << 63),
            BarKind::Rom => (2048, 1 << 31),
        }
    }

    /// Read-only low bits of the register: the space and type indicators.
    fn type_bits(&self) -> u32 {
        let prefetch = if self.prefetchable { 0x8 } else { 0 };
        match self.kind {
            BarKind::Io => 0x1,
            BarKind::Memory32 => prefetch,
            BarKind::Memory64 => 0x4 | prefetch,
            BarKind::Rom => 0,
        }
    }

    /// Writable bits of the register (and of the upper half for a 64-bit BAR).
    fn write_masks(&self) -> (u32, u32) {
        let address = !(self.size - 1);
        match self.kind {
            // All 32 bits size as QEMU's do (SeaBIOS computes sizes from the whole register);
            // an address above 0xFFFF simply decodes nothing.
            BarKind::Io => ((address as u32) & !0x3, 0),
            BarKind::Memory32 => ((address as u32) & !0xf, 0),
            BarKind::Memory64 => ((address as u32) & !0xf, (address >> 32) as u32),
            BarKind::Rom => (((address as u32) & !0x7ff) | 1, 0),
        }
    }
}

/// Mistakes in a device model's declaration of its config space (host bugs, not guest input).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciError {
    #[error("BAR {index}: {reason}")]
    Bar { index: u8, reason: &'static str },
    #[error("capability {id:#04x} at {offset:#04x}: {reason}")]
    Capability {
        id: u8,
        offset: u8,
        reason: &'static str,
    },
}

/// A BAR declared on a config space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredBar {
    /// 0..=5, or [`ROM_BAR`].
    pub index: u8,
    pub bar: Bar,
}

/// A capability in the list: where it is and how many bytes it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    pub id: u8,
    pub offset: u8,
    pub len: u8,
}

/// A function's configuration space with the rules for guest writes, meant to be a field of a
/// device's state struct.
///
/// Guest writes go through [`PciConfig::write`]: a bit changes only where `write_mask` has a 1;
/// where `clear_mask` has a 1, writing 1 clears it (status bits). The device itself sets any
/// byte with the `set_*` methods, which ignore the masks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciConfig {
    /// The 256 bytes as the guest reads them, at their register offsets.
    pub bytes: Vec<u8>,
    /// Per byte, the bits a guest write may change.
    pub write_mask: Vec<u8>,
    /// Per byte, the bits a guest clears by writing 1.
    pub clear_mask: Vec<u8>,
    pub bars: Vec<DeclaredBar>,
    /// In list order.
    pub capabilities: Vec<Capability>,
}

/// Decoded address of every possible BAR, to see whether a write moved one.
type DecodeSnapshot = [Option<u64>; 7];

impl PciConfig {
    /// A type-0 header with the identity in `id`, all BARs absent, decoding disabled, and the
    /// standard writable registers: command, status (error bits), cache line size, latency
    /// timer and interrupt line.
    #[must_use]
    pub fn new(id: &PciId) -> Self {
        let mut c = Self {
            bytes: vec![0; CONFIG_SPACE_SIZE],
            write_mask: vec![0; CONFIG_SPACE_SIZE],
            clear_mask: vec![0; CONFIG_SPACE_SIZE],
            bars: Vec::new(),
            capabilities: Vec::new(),
        };
        c.set_word(reg::VENDOR_ID, id.vendor);
        c.set_word(reg::DEVICE_ID, id.device);
        c.set_byte(reg::REVISION, id.revision);
        c.set_bytes(reg::CLASS_CODE, &id.class.to_le_bytes()[..3]);
        c.set_byte(reg::HEADER_TYPE, id.header_type);
        c.set_word(reg::SUBSYSTEM_VENDOR_ID, id.subsystem_vendor);
        c.set_word(reg::SUBSYSTEM_ID, id.subsystem);
        c.set_byte(reg::INTERRUPT_PIN, id.interrupt_pin);
        c.set_write_mask(reg::COMMAND, &command::DEFAULT_WRITABLE.to_le_bytes());
        c.set_clear_mask(reg::STATUS, &status::WRITE_1_TO_CLEAR.to_le_bytes());
        c.set_write_mask(reg::CACHE_LINE_SIZE, &[0xff, 0xff]);
        c.set_write_mask(reg::INTERRUPT_LINE, &[0xff]);
        c
    }

    /// Check a config space read back from a snapshot.
    pub fn validate(&self) -> Result<(), StateError> {
        let sizes = [
            self.bytes.len(),
            self.write_mask.len(),
            self.clear_mask.len(),
        ];
        if sizes.iter().any(|&n| n != CONFIG_SPACE_SIZE) {
            return Err(StateError::Decode(format!(
                "PCI config space arrays are {sizes:?} bytes, expected {CONFIG_SPACE_SIZE}"
            )));
        }
        if self.bars.iter().any(|b| !b.bar.size.is_power_of_two()) {
            return Err(StateError::Decode(
                "PCI BAR size is not a power of two".into(),
            ));
        }
        Ok(())
    }

    /// Declare BAR `index` (0..=5, or [`ROM_BAR`] for a [`BarKind::Rom`] BAR).
    pub fn add_bar(&mut self, index: u8, bar: Bar) -> Result<(), PciError> {
        let err = |reason| Err(PciError::Bar { index, reason });
        let (min, max) = bar.size_limits();
        if !bar.size.is_power_of_two() || bar.size < min || bar.size > max {
            return err("size is not a power of two in the range the BAR type allows");
        }
        let is_rom = bar.kind == BarKind::Rom;
        if is_rom != (index == ROM_BAR) || index > ROM_BAR {
            return err("the ROM BAR is number 6 and only it");
        }
        if bar.prefetchable && matches!(bar.kind, BarKind::Io | BarKind::Rom) {
            return err("only memory BARs are prefetchable");
        }
        let wide = bar.kind == BarKind::Memory64;
        if wide && index >= 5 {
            return err("a 64-bit BAR needs the next BAR for its upper half");
        }
        let taken = |i: u8| {
            self.bars
                .iter()
                .any(|d| d.index == i || (d.bar.kind == BarKind::Memory64 && d.index + 1 == i))
        };
        if taken(index) || (wide && taken(index + 1)) {
            return err("already declared");
        }
        let offset = Self::bar_offset(index);
        let (low, high) = bar.write_masks();
        self.set_dword(offset, bar.type_bits());
        self.set_write_mask(offset, &low.to_le_bytes());
        if wide {
            self.set_dword(offset + 4, 0);
            self.set_write_mask(offset + 4, &high.to_le_bytes());
        }
        self.bars.push(DeclaredBar { index, bar });
        Ok(())
    }

    /// Append a capability with `id` at `offset` (dword-aligned, 0x40 or above). `body` are the
    /// bytes after the ID and next-pointer bytes; `body_mask` (possibly shorter) says which of
    /// their bits the guest may write.
    pub fn add_capability(
        &mut self,
        offset: u8,
        id: u8,
        body: &[u8],
        body_mask: &[u8],
    ) -> Result<(), PciError> {
        let err = |reason| Err(PciError::Capability { id, offset, reason });
        let len = body.len() + 2;
        if u16::from(offset) < reg::DEVICE_SPECIFIC || !offset.is_multiple_of(4) {
            return err("must be dword-aligned and past the standard header");
        }
        if usize::from(offset) + len > CONFIG_SPACE_SIZE || body_mask.len() > body.len() {
            return err("does not fit in config space");
        }
        let end = usize::from(offset) + len;
        let overlaps = self.capabilities.iter().any(|c| {
            usize::from(c.offset) < end
                && usize::from(offset) < usize::from(c.offset) + usize::from(c.len)
        });
        if overlaps {
            return err("overlaps another capability");
        }
        let at = u16::from(offset);
        self.set_bytes(at, &[id, 0]);
        self.set_bytes(at + 2, body);
        self.set_write_mask(at + 2, body_mask);
        match self.capabilities.last() {
            Some(prev) => self.set_byte(u16::from(prev.offset) + 1, offset),
            None => self.set_byte(reg::CAPABILITIES, offset),
        }
        let status = self.word(reg::STATUS) | status::CAPABILITIES;
        self.set_word(reg::STATUS, status);
        self.capabilities.push(Capability {
            id,
            offset,
            len: len as u8,
        });
        Ok(())
    }

    /// Offset of the first capability with `id`.
    #[must_use]
    pub fn find_capability(&self, id: u8) -> Option<u8> {
        self.capabilities
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.offset)
    }

    /// Guest read of `size` (1, 2 or 4) bytes at `offset`, little-endian; bytes past the end of
    /// config space read as 0.
    #[must_use]
    pub fn read(&self, offset: u16, size: u8) -> u32 {
        (0..size.clamp(1, 4)).fold(0u32, |value, i| {
            let byte = self.byte(offset.wrapping_add(u16::from(i)));
            value | (u32::from(byte) << (8 * u32::from(i)))
        })
    }

    /// Guest write of the low `size` (1, 2 or 4) bytes of `value` at `offset`, honouring the
    /// write and write-1-to-clear masks. Returns whether decoding changed (a BAR moved, or the
    /// command register switched I/O or memory decoding): the device must then call
    /// [`DeviceContext::remap`].
    pub fn write(&mut self, offset: u16, size: u8, value: u32) -> bool {
        let before = self.decode_snapshot();
        for i in 0..size.clamp(1, 4) {
            let at = usize::from(offset.wrapping_add(u16::from(i)));
            let new = (value >> (8 * u32::from(i))) as u8;
            let (Some(byte), Some(&wmask), Some(&cmask)) = (
                self.bytes.get(at),
                self.write_mask.get(at),
                self.clear_mask.get(at),
            ) else {
                continue;
            };
            let merged = ((byte & !wmask) | (new & wmask)) & !(new & cmask);
            if let Some(slot) = self.bytes.get_mut(at) {
                *slot = merged;
            }
        }
        before != self.decode_snapshot()
    }

    /// [`PciConfig::write`], calling `ctx.remap()` when decoding changed.
    pub fn write_and_remap(
        &mut self,
        offset: u16,
        size: u8,
        value: u32,
        ctx: &mut dyn DeviceContext,
    ) {
        if self.write(offset, size, value) {
            ctx.remap();
        }
    }

    fn decode_snapshot(&self) -> DecodeSnapshot {
        let mut snap = [None; 7];
        for d in &self.bars {
            if let Some(slot) = snap.get_mut(usize::from(d.index)) {
                *slot = self.bar_address(d.index);
            }
        }
        snap
    }

    #[must_use]
    pub fn command(&self) -> u16 {
        self.word(reg::COMMAND)
    }

    #[must_use]
    pub fn status(&self) -> u16 {
        self.word(reg::STATUS)
    }

    /// Set status bits from the device side (e.g. received master abort).
    pub fn set_status_bits(&mut self, bits: u16) {
        let status = self.status() | bits;
        self.set_word(reg::STATUS, status);
    }

    /// Whether the guest let the function master the bus (DMA).
    #[must_use]
    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// Record the function's INTx# request in the status register and return the level the
    /// pin drives: `asserted` unless the guest set Interrupt Disable.
    pub fn set_intx(&mut self, asserted: bool) -> bool {
        let status = self.status() & !status::INTERRUPT;
        self.set_word(
            reg::STATUS,
            status | if asserted { status::INTERRUPT } else { 0 },
        );
        asserted && self.command() & command::INTX_DISABLE == 0
    }

    /// The declaration of BAR `index`.
    #[must_use]
    pub fn bar(&self, index: u8) -> Option<Bar> {
        self.bars.iter().find(|d| d.index == index).map(|d| d.bar)
    }

    /// The address BAR `index` decodes at, only while the command register (and, for the ROM,
    /// its enable bit) turns decoding on. A BAR at 0, or one whose range would run past the
    /// end of its address space (e.g. in the middle of sizing), decodes nothing.
    #[must_use]
    pub fn bar_address(&self, index: u8) -> Option<u64> {
        let bar = self.bar(index)?;
        let offset = Self::bar_offset(index);
        let low = self.dword(offset);
        let cmd = self.command();
        let (enabled, base, limit) = match bar.kind {
            BarKind::Io => (cmd & command::IO != 0, u64::from(low & !0x3), 1 << 16),
            BarKind::Memory32 => (cmd & command::MEMORY != 0, u64::from(low & !0xf), 1 << 32),
            BarKind::Memory64 => {
                let high = u64::from(self.dword(offset + 4)) << 32;
                (
                    cmd & command::MEMORY != 0,
                    high | u64::from(low & !0xf),
                    u64::MAX,
                )
            }
            BarKind::Rom => (
                cmd & command::MEMORY != 0 && low & 1 != 0,
                u64::from(low & !0x7ff),
                1 << 32,
            ),
        };
        let end = base.checked_add(bar.size)?;
        (enabled && base != 0 && end <= limit).then_some(base)
    }

    /// The I/O BARs decoding now, as (BAR index, ports).
    #[must_use]
    pub fn io_bars(&self) -> Vec<(u8, PortRange)> {
        self.bars
            .iter()
            .filter(|d| d.bar.kind == BarKind::Io)
            .filter_map(|d| {
                let base = u16::try_from(self.bar_address(d.index)?).ok()?;
                let count = u16::try_from(d.bar.size).unwrap_or(u16::MAX);
                Some((d.index, PortRange::new(base, count)))
            })
            .collect()
    }

    /// The memory BARs (and ROM) decoding now, as (BAR index, window).
    #[must_use]
    pub fn mmio_bars(&self) -> Vec<(u8, MmioRange)> {
        self.bars
            .iter()
            .filter(|d| d.bar.kind != BarKind::Io)
            .filter_map(|d| {
                let base = self.bar_address(d.index)?;
                Some((d.index, MmioRange::new(base, d.bar.size)))
            })
            .collect()
    }

    /// Which decoding I/O BAR holds `port`, and the offset into it.
    #[must_use]
    pub fn io_bar_at(&self, port: u16) -> Option<(u8, u16)> {
        self.io_bars()
            .into_iter()
            .find(|(_, r)| r.contains(port))
            .map(|(i, r)| (i, port - r.first))
    }

    /// Which decoding memory BAR holds `addr`, and the offset into it.
    #[must_use]
    pub fn mmio_bar_at(&self, addr: u64) -> Option<(u8, u64)> {
        self.mmio_bars()
            .into_iter()
            .find(|(_, r)| r.contains(addr))
            .map(|(i, r)| (i, addr - r.base))
    }

    fn bar_offset(index: u8) -> u16 {
        if index == ROM_BAR {
            reg::ROM_ADDRESS
        } else {
            reg::BAR0 + 4 * u16::from(index)
        }
    }

    /// A byte as stored (0 past the end).
    #[must_use]
    pub fn byte(&self, offset: u16) -> u8 {
        self.bytes.get(usize::from(offset)).copied().unwrap_or(0)
    }

    #[must_use]
    pub fn word(&self, offset: u16) -> u16 {
        self.read(offset, 2) as u16
    }

    #[must_use]
    pub fn dword(&self, offset: u16) -> u32 {
        self.read(offset, 4)
    }

    /// Device-side store of bytes at `offset`, ignoring the masks (bytes past the end dropped).
    pub fn set_bytes(&mut self, offset: u16, bytes: &[u8]) {
        Self::store(&mut self.bytes, offset, bytes);
    }

    pub fn set_byte(&mut self, offset: u16, value: u8) {
        self.set_bytes(offset, &[value]);
    }

    pub fn set_word(&mut self, offset: u16, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    pub fn set_dword(&mut self, offset: u16, value: u32) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Make bits at `offset..` guest-writable (1) or read-only (0).
    pub fn set_write_mask(&mut self, offset: u16, mask: &[u8]) {
        Self::store(&mut self.write_mask, offset, mask);
    }

    /// Make bits at `offset..` write-1-to-clear.
    pub fn set_clear_mask(&mut self, offset: u16, mask: &[u8]) {
        Self::store(&mut self.clear_mask, offset, mask);
    }

    fn store(array: &mut [u8], offset: u16, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(slot) = array.get_mut(usize::from(offset) + i) {
                *slot = *b;
            }
        }
    }
}

/// A PCI function as the machine's configuration mechanism sees it.
pub trait PciFunction {
    /// Where the function answers config cycles; fixed when the machine builds the device.
    fn pci_slot(&self) -> PciSlot;
    /// Read `size` (1, 2 or 4) bytes at config offset `offset` (the access never crosses a
    /// dword boundary).
    fn config_read(&mut self, offset: u16, size: u8) -> u32;
    /// Write the low `size` bytes of `value` at config offset `offset`.
    fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext);
}
