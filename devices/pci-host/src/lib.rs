//! Intel 82441FX PMC, the host bridge of the i440FX chipset (PCI 00:00.0, 8086:1237).
//!
//! The function answers configuration cycles only: the machine owns the configuration
//! mechanism (ports 0xCF8/0xCFC, see `nestor_device::pci::ConfigAddress`) and forwards the
//! cycles for 00:00.0 here. Besides the identity, the registers firmware programs are kept:
//! DRAM control (0x50-0x58), row boundaries (0x60-0x67), the PAM registers 0x59-0x5F that
//! steer reads and writes of 0xC0000-0xFFFFF to DRAM or to the ROM/PCI side (shadow RAM), and
//! SMRAM control 0x72 with its lock. A write that changes PAM or SMRAM calls `ctx.remap()`: the
//! machine then reads the new attributes with [`I440fx::pam_regions`] (or [`pam_regions`] on
//! bytes read through config space) and rebuilds its memory map.

#[cfg(test)]
mod tests;

use nestor_device::pci::{PciConfig, PciFunction, PciId, PciSlot};
use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`I440fxState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x1237;
/// Revision QEMU reports for its i440FX.
pub const REVISION: u8 = 0x02;
/// Where the host bridge sits.
pub const DEFAULT_SLOT: PciSlot = PciSlot::new(0, 0, 0);

/// Config registers of the 82441FX.
pub mod reg {
    /// PAM0..PAM6: seven registers, 0x59..=0x5F.
    pub const PAM0: u16 = 0x59;
    pub const PAM_COUNT: usize = 7;
    /// DRAM row boundary registers DRB0..DRB7.
    pub const DRB0: u16 = 0x60;
    pub const SMRAM: u16 = 0x72;
    pub const ERRSTS: u16 = 0x91;
}

/// SMRAM control register bits.
pub mod smram {
    /// SMRAM visible to code outside SMM.
    pub const D_OPEN: u8 = 0x40;
    pub const D_CLS: u8 = 0x20;
    /// Locks D_OPEN, G_SMRAME and itself until reset.
    pub const D_LCK: u8 = 0x10;
    pub const G_SMRAME: u8 = 0x08;
    /// C_BASE_SEG = 010b: SMRAM at 0xA0000-0xBFFFF (read-only).
    pub const C_BASE_SEG: u8 = 0x02;
}

/// PAM attribute bits of one nibble.
const PAM_READ_ENABLE: u8 = 0x1;
const PAM_WRITE_ENABLE: u8 = 0x2;

/// Plugin descriptor. Options: `slot`, `function` (default 00:00.0).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "i440fx",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(I440fx::from_config(config)?))
}

/// Guest-visible state of the host bridge.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct I440fxState {
    pub pci: PciConfig,
}

/// Where accesses to one shadowable segment go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamRegion {
    pub base: u64,
    pub len: u64,
    /// Reads come from DRAM (else from the ROM/PCI side).
    pub read_ram: bool,
    /// Writes go to DRAM (else to the ROM/PCI side, where a ROM drops them).
    pub write_ram: bool,
}

/// Decode PAM0..PAM6 into the 13 segments they control: 0xF0000-0xFFFFF (PAM0 bits 5:4),
/// then 0xC0000-0xEFFFF in 16 KiB pieces (low nibble of PAM1 first).
#[must_use]
pub fn pam_regions(pam: &[u8; reg::PAM_COUNT]) -> Vec<PamRegion> {
    let region = |base, len, bits: u8| PamRegion {
        base,
        len,
        read_ram: bits & PAM_READ_ENABLE != 0,
        write_ram: bits & PAM_WRITE_ENABLE != 0,
    };
    let mut regions = vec![region(0xf_0000, 0x1_0000, pam[0] >> 4)];
    for (i, &byte) in pam.iter().enumerate().skip(1) {
        let base = 0xc_0000 + (i as u64 - 1) * 0x8000;
        regions.push(region(base, 0x4000, byte & 0xf));
        regions.push(region(base + 0x4000, 0x4000, byte >> 4));
    }
    regions
}

/// The i440FX host bridge function.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_pci_host::I440fx;
///
/// let mut bridge = I440fx::new();
/// let mut ctx = FakeContext::new();
/// let pci = bridge.pci().unwrap();
/// assert_eq!(pci.config_read(0, 4), 0x1237_8086);
/// pci.config_write(0x59, 1, 0x30, &mut ctx); // BIOS area 0xF0000: read and write DRAM
/// assert_eq!(ctx.remaps, 1);
/// assert!(bridge.pam_regions()[0].read_ram);
/// ```
pub struct I440fx {
    state: I440fxState,
    slot: PciSlot,
}

impl Default for I440fx {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fx {
    /// The host bridge at 00:00.0 in its power-on state.
    #[must_use]
    pub fn new() -> Self {
        Self::at(DEFAULT_SLOT)
    }

    #[must_use]
    pub fn at(slot: PciSlot) -> Self {
        Self {
            state: I440fxState {
                pci: power_on_config(),
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
    pub fn state(&self) -> &I440fxState {
        &self.state
    }

    /// PAM0..PAM6 as the guest programmed them.
    #[must_use]
    pub fn pam(&self) -> [u8; reg::PAM_COUNT] {
        std::array::from_fn(|i| self.state.pci.byte(reg::PAM0 + i as u16))
    }

    /// The shadow RAM attributes of 0xC0000-0xFFFFF.
    #[must_use]
    pub fn pam_regions(&self) -> Vec<PamRegion> {
        pam_regions(&self.pam())
    }

    /// The SMRAM control register (see [`smram`]).
    #[must_use]
    pub fn smram(&self) -> u8 {
        self.state.pci.byte(reg::SMRAM)
    }

    /// Bytes whose change alters the memory map.
    fn memory_controls(&self) -> [u8; 8] {
        let pam = self.pam();
        std::array::from_fn(|i| pam.get(i).copied().unwrap_or_else(|| self.smram()))
    }

    /// After D_LCK is set, D_OPEN is cleared and only D_CLS stays writable until reset.
    fn apply_smram_lock(&mut self) {
        let value = self.smram();
        if value & smram::D_LCK != 0 {
            self.state.pci.set_byte(reg::SMRAM, value & !smram::D_OPEN);
            self.state.pci.set_write_mask(reg::SMRAM, &[smram::D_CLS]);
        }
    }
}

/// The configuration space at power-on.
fn power_on_config() -> PciConfig {
    let mut id = PciId::new(VENDOR_ID, DEVICE_ID, 0x06_00_00);
    id.revision = REVISION;
    let mut c = PciConfig::new(&id);
    // Memory and bus-master "enabled" as the datasheet's defaults; status: DEVSEL medium,
    // fast back-to-back capable.
    c.set_word(0x04, 0x0006);
    c.set_word(0x06, 0x0280);
    c.set_write_mask(0x50, &[0xff; 9]); // PMCCFG, DETURBO, DBC, AXC, DRAMR, DRAMC, DRAMT
    c.set_write_mask(reg::PAM0, &[0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
    c.set_write_mask(reg::DRB0, &[0xff; 8]);
    c.set_write_mask(0x68, &[0xc0]); // FDHC: fixed memory holes
    c.set_write_mask(0x70, &[0xff, 0xff]); // MTT, CLT
    c.set_byte(reg::SMRAM, smram::C_BASE_SEG);
    c.set_write_mask(
        reg::SMRAM,
        &[smram::D_OPEN | smram::D_CLS | smram::D_LCK | smram::G_SMRAME],
    );
    c.set_write_mask(0x90, &[0xff]); // ERRCMD
    c.set_clear_mask(reg::ERRSTS, &[0xff]);
    c
}

impl PciFunction for I440fx {
    fn pci_slot(&self) -> PciSlot {
        self.slot
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.state.pci.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let before = self.memory_controls();
        // The bridge has no BARs: nothing else changes decoding.
        self.state.pci.write(offset, size, value);
        self.apply_smram_lock();
        if self.memory_controls() != before {
            ctx.remap();
        }
    }
}

impl Snapshot for I440fx {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: I440fxState = restore_state(STATE_VERSION, bytes)?;
        state.pci.validate()?;
        self.state = state;
        Ok(())
    }
}

impl Device for I440fx {
    fn name(&self) -> &str {
        "i440fx"
    }

    fn ports(&self) -> Vec<PortRange> {
        Vec::new()
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}

    /// PCI reset: every register returns to its default, the SMRAM lock included.
    fn reset(&mut self) {
        self.state.pci = power_on_config();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn pci(&mut self) -> Option<&mut dyn PciFunction> {
        Some(self)
    }
}
