//! VGA adapter with the Bochs VBE extensions (DISPI interface and linear framebuffer).
//!
//! Ports: attribute controller 0x3C0/0x3C1 (index/data flip-flop, reset by reading input
//! status 1), input status 0 0x3C2 / misc output (write 0x3C2, read 0x3CC), sequencer
//! 0x3C4/0x3C5, DAC 0x3C6-0x3C9, feature control (read 0x3CA), graphics controller 0x3CE/0x3CF,
//! CRTC at 0x3B4/0x3B5 or 0x3D4/0x3D5 and input status 1 at 0x3BA or 0x3DA (monochrome or
//! colour, by misc output bit 0), and the Bochs DISPI registers at 0x1CE (index) / 0x1CF (data).
//!
//! Memory: the legacy window in 0xA0000-0xBFFFF decodes the part the graphics controller's
//! memory map select names (A0000 128K / A0000 64K / B0000 32K / B8000 32K), with the full
//! VGA data path: planes, latches, read modes 0-1, write modes 0-3, set/reset, rotate and
//! logical function, bit mask, map mask, chain-4 and odd/even. While VBE is enabled the window
//! is A0000-AFFFF, banked through VBE_DISPI_INDEX_BANK, and the linear framebuffer (option
//! `lfb`, default 0xE000_0000) decodes all of VRAM while the LFB bit is set. Whenever the
//! windows change the device calls `DeviceContext::remap` and [`Device::mmio_ranges`] returns
//! the new ones.
//!
//! Display: [`Vga::render`] draws the current picture (text, planar 16-colour, CGA 4-colour
//! and 2-colour, 256-colour chained or unchained, VBE 8/15/16/24/32 bpp), [`Vga::text_screen`]
//! returns the characters of a text mode, and [`Vga::generation`] changes whenever something
//! that may change the picture was written. [`Vga::render_update`] keeps a frontend's frame up
//! to date by redrawing only the lines whose VRAM pages were written since its last call (a
//! host-side dirty bitmap, not saved in snapshots), or all of it after a register, DAC or mode
//! change. Input status 1 shows a 60 Hz display computed from virtual time.
//!
//! The device powers on with the registers and DAC of mode 3, as if the VGA BIOS had set it
//! (no font is loaded: that is the BIOS's job, through plane 2). Register tables for the
//! standard modes are in [`modes`].
//!
//! The linear framebuffer comes in two forms. Without PCI (the default) it sits at the fixed
//! address of option `lfb` and decodes while VBE is enabled with its LFB bit. With option
//! `pci=1` the adapter is also a PCI function ([`Vga::new_pci`], QEMU's 1234:1111 at slot 2 by
//! default) whose BAR 0 is the framebuffer, decoding wherever the BAR points while memory
//! decoding is on; BAR 0 starts at `lfb` with decoding on, so it works before firmware
//! assigns BARs. [`Vga::lfb_base`] says where it is, for the BIOS's VBE mode information.

mod dirty;
mod memory;
pub mod modes;
pub mod pci;
mod regs;
mod render;
#[cfg(test)]
mod tests;
mod text;
mod vbe;
mod vram_codec;

pub use dirty::Damage;
pub use render::Frame;
pub use text::cp437_to_char;
pub use vbe::{dispi, VbeState};

use nestor_device::pci::{PciConfig, PciError, PciFunction, PciSlot};
use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, MmioRange,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`VgaState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Default physical address of the linear framebuffer.
pub const DEFAULT_LFB: u64 = 0xe000_0000;
/// Default VRAM size in MiB.
pub const DEFAULT_VRAM_MIB: u64 = 16;

/// Plugin descriptor. Options: `vram_mib` (1-256, default 16), `lfb` (physical address of the
/// linear framebuffer, 64 KiB aligned, default 0xE0000000), `pci` (1: also a PCI function,
/// VRAM rounded up to a power of two) with `slot`/`function` (default 00:02.0).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "vga",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&["vram_mib", "lfb", "pci", "slot", "function"])?;
    let vram_mib = config.number_in("vram_mib", DEFAULT_VRAM_MIB, 1, 256)?;
    let lfb = config.number_in("lfb", DEFAULT_LFB, 0x10_0000, (1 << 48) - 1)?;
    if lfb % 0x1_0000 != 0 {
        return Err(ConfigError::Other(format!(
            "lfb={lfb:#x} is not 64 KiB aligned"
        )));
    }
    let vga_config = VgaConfig {
        vram_bytes: (vram_mib as usize) << 20,
        lfb_base: lfb,
    };
    if config.number_in("pci", 0, 0, 1)? == 0 {
        return Ok(Box::new(Vga::new(vga_config)));
    }
    let slot = PciSlot::from_config(config, pci::DEFAULT_SLOT)?;
    let vga = Vga::new_pci(vga_config, slot).map_err(|e| ConfigError::Other(e.to_string()))?;
    Ok(Box::new(vga))
}

/// How the adapter is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgaConfig {
    /// VRAM size in bytes (a multiple of 64 KiB, at least 256 KiB).
    pub vram_bytes: usize,
    /// Physical address of the linear framebuffer.
    pub lfb_base: u64,
}

impl Default for VgaConfig {
    fn default() -> Self {
        Self {
            vram_bytes: (DEFAULT_VRAM_MIB as usize) << 20,
            lfb_base: DEFAULT_LFB,
        }
    }
}

/// Guest-visible state of the adapter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct VgaState {
    /// Miscellaneous output register.
    pub misc_output: u8,
    /// Feature control register.
    pub feature_control: u8,
    /// Video subsystem enable (0x3C3).
    pub video_enable: u8,
    pub seq_index: u8,
    /// Sequencer registers 0-4 (the rest read as written).
    pub seq: [u8; 8],
    pub gc_index: u8,
    /// Graphics controller registers 0-8.
    pub gc: [u8; 16],
    pub crtc_index: u8,
    /// CRTC registers 0x00-0x18.
    pub crtc: [u8; 32],
    /// Attribute controller index with the palette address source bit (0x20).
    pub attr_index: u8,
    /// The next write to 0x3C0 is data (not index).
    pub attr_flip_flop: bool,
    /// Attribute controller registers 0x00-0x14.
    pub attr: [u8; 32],
    /// DAC: entry read through 0x3C9 next, entry written next, component 0-2 within it.
    pub dac_read_index: u8,
    pub dac_write_index: u8,
    pub dac_component: u8,
    /// The last index written was the read index (0x3C7 reads 3, else 0).
    pub dac_reading: bool,
    pub pel_mask: u8,
    /// 256 DAC entries, 3 components each (6 significant bits unless the VBE 8-bit DAC is on).
    pub palette: Vec<u8>,
    /// The four plane latches, loaded by every read of the legacy window.
    pub latches: [u8; 4],
    pub vbe: VbeState,
    /// The PCI configuration space, when the adapter is a PCI function.
    pub pci: Option<PciConfig>,
    /// Video memory. Planar modes keep byte `p` of plane address `a` at `4 * a + p`;
    /// VBE modes use it linearly.
    #[serde(with = "vram_codec")]
    pub vram: Vec<u8>,
}

impl VgaState {
    fn power_on(vram_bytes: usize, pci: Option<PciConfig>) -> Self {
        let mut s = Self {
            misc_output: 0,
            feature_control: 0,
            video_enable: 1,
            seq_index: 0,
            seq: [0; 8],
            gc_index: 0,
            gc: [0; 16],
            crtc_index: 0,
            crtc: [0; 32],
            attr_index: 0,
            attr_flip_flop: false,
            attr: [0; 32],
            dac_read_index: 0,
            dac_write_index: 0,
            dac_component: 0,
            dac_reading: false,
            pel_mask: 0xff,
            palette: vec![0; 768],
            latches: [0; 4],
            vbe: VbeState::default(),
            pci,
            vram: vec![0; vram_bytes],
        };
        let mode3 = &modes::STANDARD_MODES[3];
        let r = &mode3.regs;
        s.misc_output = r.misc;
        s.seq[..5].copy_from_slice(&r.seq);
        s.crtc[..25].copy_from_slice(&r.crtc);
        s.gc[..9].copy_from_slice(&r.gc);
        s.attr[..20].copy_from_slice(&r.attr);
        s.attr_index = 0x20;
        for (i, rgb) in mode3.palette.colors().iter().enumerate() {
            s.palette[i * 3..i * 3 + 3].copy_from_slice(rgb);
        }
        s
    }
}

/// Which legacy window and VBE windows decode: what [`Device::mmio_ranges`] depends on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct WindowKey {
    map_select: u8,
    vbe: bool,
    lfb: Option<u64>,
}

/// The VGA adapter.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_vga::{Vga, VgaConfig};
///
/// let mut vga = Vga::new(VgaConfig::default()); // registers of mode 3 (80x25 text)
/// let mut ctx = FakeContext::new();
/// vga.mmio_write(0xb8000, b"H\x07i\x07", &mut ctx);
/// assert_eq!(vga.text_screen().unwrap().lines().next(), Some("Hi"));
/// let frame = vga.render();
/// assert_eq!((frame.width, frame.height), (720, 400));
/// ```
pub struct Vga {
    state: VgaState,
    config: VgaConfig,
    /// Where the PCI function answers, when there is one.
    pci_slot: Option<PciSlot>,
    generation: u64,
    /// Pages written since the last [`Vga::render_update`] (host bookkeeping, not saved).
    dirty: dirty::Tracker,
}

impl Vga {
    /// An adapter in its power-on state (mode 3 registers, VRAM cleared). `vram_bytes` is
    /// rounded up to 64 KiB and to at least 256 KiB.
    #[must_use]
    pub fn new(config: VgaConfig) -> Self {
        let vram_bytes = config.vram_bytes.max(256 << 10).next_multiple_of(0x1_0000);
        let config = VgaConfig {
            vram_bytes,
            ..config
        };
        Self {
            state: VgaState::power_on(vram_bytes, None),
            config,
            pci_slot: None,
            generation: 0,
            dirty: dirty::Tracker::new(vram_bytes),
        }
    }

    /// An adapter that is also a PCI function at `slot` (see the crate documentation). VRAM
    /// is rounded up to a power of two, the size of BAR 0.
    pub fn new_pci(config: VgaConfig, slot: PciSlot) -> Result<Self, PciError> {
        let mut vga = Self::new(config);
        vga.config.vram_bytes = vga.config.vram_bytes.next_power_of_two();
        let pci = pci::config_space(vga.config.vram_bytes, config.lfb_base)?;
        vga.state = VgaState::power_on(vga.config.vram_bytes, Some(pci));
        vga.pci_slot = Some(slot);
        vga.dirty = dirty::Tracker::new(vga.config.vram_bytes);
        Ok(vga)
    }

    /// Where the linear framebuffer is (or would be, with VBE off): the fixed `lfb` address,
    /// or BAR 0 of the PCI function while it decodes.
    #[must_use]
    pub fn lfb_base(&self) -> Option<u64> {
        match &self.state.pci {
            Some(pci) => pci.bar_address(0),
            None => Some(self.config.lfb_base),
        }
    }

    /// Where the linear framebuffer decodes now.
    fn lfb_window(&self) -> Option<u64> {
        if self.state.pci.is_some() {
            return self.lfb_base();
        }
        let vbe = &self.state.vbe;
        (vbe.enabled() && vbe.lfb_enabled()).then_some(self.config.lfb_base)
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &VgaState {
        &self.state
    }

    #[must_use]
    pub fn config(&self) -> VgaConfig {
        self.config
    }

    /// Changes whenever VRAM, the palette or a register that may change the picture is
    /// written (or a state is restored): a frontend redraws when it differs from the value it
    /// drew last. Blinking and the cursor also change with time (see [`Vga::render_at`]).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Something beyond the registers [`Vga::render_update`] compares changed the picture.
    fn touch_all(&mut self) {
        self.touch();
        self.dirty.invalidate();
    }

    fn window_key(&self) -> WindowKey {
        WindowKey {
            map_select: (self.state.gc[6] >> 2) & 3,
            vbe: self.state.vbe.enabled(),
            lfb: self.lfb_window(),
        }
    }

    /// The legacy window as (base, length).
    fn legacy_window(&self) -> (u64, u64) {
        if self.state.vbe.enabled() {
            return (0xa0000, 0x1_0000);
        }
        match (self.state.gc[6] >> 2) & 3 {
            0 => (0xa0000, 0x2_0000),
            1 => (0xa0000, 0x1_0000),
            2 => (0xb0000, 0x8000),
            _ => (0xb8000, 0x8000),
        }
    }

    /// The CRTC and input status 1 ports in use: colour (0x3Dx) when misc output bit 0 is set.
    fn color_ports(&self) -> bool {
        self.state.misc_output & 1 != 0
    }
}

impl Snapshot for Vga {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: VgaState = restore_state(STATE_VERSION, bytes)?;
        if state.vram.len() != self.config.vram_bytes {
            return Err(StateError::Decode(format!(
                "VRAM has {} bytes, this adapter has {}",
                state.vram.len(),
                self.config.vram_bytes
            )));
        }
        if state.pci.is_some() != self.state.pci.is_some() {
            return Err(StateError::Decode(
                "saved state and adapter differ in having a PCI function".into(),
            ));
        }
        if let Some(pci) = &state.pci {
            pci.validate()?;
        }
        if state.palette.len() != 768 {
            return Err(StateError::Decode(format!(
                "DAC has {} bytes, expected 768",
                state.palette.len()
            )));
        }
        self.state = state;
        self.touch_all();
        Ok(())
    }
}

impl Device for Vga {
    fn name(&self) -> &str {
        "vga"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![
            PortRange::new(dispi::INDEX_PORT, 2),
            PortRange::new(0x3b4, 2),
            PortRange::new(0x3ba, 1),
            PortRange::new(0x3c0, 16),
            PortRange::new(0x3d4, 2),
            PortRange::new(0x3da, 1),
        ]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let now = ctx.now_ns();
        self.port_read(port, size, now)
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let before = self.window_key();
        self.port_write(port, size, value);
        if self.window_key() != before {
            ctx.remap();
        }
    }

    /// Power-on state (mode 3 registers); VRAM is cleared.
    fn reset(&mut self) {
        let pci = match &self.state.pci {
            Some(old) => Some(
                pci::config_space(self.config.vram_bytes, self.config.lfb_base)
                    .unwrap_or_else(|_| old.clone()),
            ),
            None => None,
        };
        self.state = VgaState::power_on(self.config.vram_bytes, pci);
        self.touch_all();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn mmio_ranges(&self) -> Vec<MmioRange> {
        let (base, len) = self.legacy_window();
        let mut ranges = vec![MmioRange::new(base, len)];
        if let Some(lfb) = self.lfb_window() {
            ranges.push(MmioRange::new(lfb, self.config.vram_bytes as u64));
        }
        ranges
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8], _ctx: &mut dyn DeviceContext) {
        self.mem_read(addr, data);
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8], _ctx: &mut dyn DeviceContext) {
        self.mem_write(addr, data);
    }

    /// For the machine's typed access to the inherent API (input, A20, display).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn pci(&mut self) -> Option<&mut dyn PciFunction> {
        if self.state.pci.is_some() {
            Some(self)
        } else {
            None
        }
    }
}
