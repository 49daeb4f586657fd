//! The adapter as a PCI function, as QEMU's "VGA" (1234:1111, which Linux's bochs-drm and
//! SeaBIOS's VGA BIOS know): a VGA-compatible display controller whose BAR 0 is the linear
//! framebuffer (prefetchable, the size of VRAM). The legacy ports and window decode whatever
//! the command register says, as on QEMU.

use crate::Vga;
use nestor_device::pci::{command, reg, Bar, PciConfig, PciError, PciFunction, PciId, PciSlot};
use nestor_device::DeviceContext;

/// Where QEMU's i440FX board puts its VGA.
pub const DEFAULT_SLOT: PciSlot = PciSlot::new(0, 2, 0);

pub const VENDOR_ID: u16 = 0x1234;
pub const DEVICE_ID: u16 = 0x1111;
/// Display controller, VGA compatible.
pub const CLASS: u32 = 0x03_00_00;

/// The configuration space: BAR 0 over VRAM. When `lfb` is aligned to the BAR's size it is
/// preset there with memory decoding on, so the framebuffer works before firmware assigns
/// BARs; firmware may move it.
pub(crate) fn config_space(vram_bytes: usize, lfb: u64) -> Result<PciConfig, PciError> {
    let mut id = PciId::new(VENDOR_ID, DEVICE_ID, CLASS);
    id.subsystem_vendor = 0x1af4;
    id.subsystem = 0x1100;
    let mut pci = PciConfig::new(&id);
    let size = vram_bytes as u64;
    pci.add_bar(0, Bar::mem32(size).prefetchable())?;
    if lfb & (size - 1) == 0 && lfb.checked_add(size).is_some_and(|end| end <= 1 << 32) {
        pci.set_dword(reg::BAR0, lfb as u32 | 0x8);
        pci.set_word(reg::COMMAND, command::IO | command::MEMORY);
    }
    Ok(pci)
}

impl PciFunction for Vga {
    fn pci_slot(&self) -> PciSlot {
        self.pci_slot.unwrap_or(DEFAULT_SLOT)
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        match &self.state.pci {
            Some(pci) => pci.read(offset, size),
            None => u32::MAX,
        }
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if let Some(pci) = &mut self.state.pci {
            pci.write_and_remap(offset, size, value, ctx);
        }
    }
}
