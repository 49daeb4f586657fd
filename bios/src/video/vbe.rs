//! VBE 3.0 (INT 10h/4Fxx) on the Bochs DISPI interface (ports 0x1CE/0x1CF) with a linear
//! frame buffer at the VGA PCI device's BAR 0.

use crate::call::{r, Call, Outcome};
use crate::guest::{read_vec, wr8};
use crate::io::{inw, outw};
use crate::video::regs;
use crate::{pci, BiosState, Platform};
use nestor_cpu::SegReg;
use nestor_vga::modes::DacPalette;

const DISPI_INDEX: u16 = 0x1CE;
const DISPI_DATA: u16 = 0x1CF;
const REG_ID: u16 = 0;
const REG_XRES: u16 = 1;
const REG_YRES: u16 = 2;
const REG_BPP: u16 = 3;
const REG_ENABLE: u16 = 4;
const REG_BANK: u16 = 5;
const REG_VIRT_WIDTH: u16 = 6;
const REG_X_OFFSET: u16 = 8;
const REG_Y_OFFSET: u16 = 9;
const REG_VIDEO_MEMORY_64K: u16 = 0x0A;
const ENABLED: u16 = 0x01;
const LFB_ENABLED: u16 = 0x40;
const NO_CLEAR: u16 = 0x80;
/// Where the frame buffer is when no VGA PCI device tells otherwise.
const DEFAULT_LFB: u32 = 0xE000_0000;

/// VBE modes: number, width, height, bits per pixel.
pub const VBE_MODES: [(u16, u16, u16, u8); 16] = [
    (0x100, 640, 400, 8),
    (0x101, 640, 480, 8),
    (0x103, 800, 600, 8),
    (0x105, 1024, 768, 8),
    (0x110, 640, 480, 15),
    (0x111, 640, 480, 16),
    (0x112, 640, 480, 24),
    (0x113, 800, 600, 15),
    (0x114, 800, 600, 16),
    (0x115, 800, 600, 24),
    (0x116, 1024, 768, 15),
    (0x117, 1024, 768, 16),
    (0x118, 1024, 768, 24),
    (0x142, 640, 480, 32),
    (0x143, 800, 600, 32),
    (0x144, 1024, 768, 32),
];

fn dispi_write(p: &mut dyn Platform, reg: u16, v: u16) {
    outw(p, DISPI_INDEX, reg);
    outw(p, DISPI_DATA, v);
}

fn dispi_read(p: &mut dyn Platform, reg: u16) -> u16 {
    outw(p, DISPI_INDEX, reg);
    inw(p, DISPI_DATA)
}

fn present(p: &mut dyn Platform) -> bool {
    (0xB0C0..=0xB0CF).contains(&dispi_read(p, REG_ID))
}

/// Turns the DISPI mode off (back to VGA).
pub fn disable(p: &mut dyn Platform) {
    dispi_write(p, REG_ENABLE, 0);
}

fn vram_bytes(p: &mut dyn Platform) -> u32 {
    match dispi_read(p, REG_VIDEO_MEMORY_64K) {
        0 | 0xFFFF => 16 << 20,
        n => u32::from(n) << 16,
    }
}

fn bytes_per_pixel(bpp: u8) -> u32 {
    u32::from(bpp).div_ceil(8)
}

fn pitch(width: u16, bpp: u8) -> u32 {
    u32::from(width) * bytes_per_pixel(bpp)
}

fn fits(p: &mut dyn Platform, m: &(u16, u16, u16, u8)) -> bool {
    pitch(m.1, m.3) * u32::from(m.2) <= vram_bytes(p)
}

/// The frame buffer's physical address: BAR 0 of the VGA device.
fn lfb(p: &mut dyn Platform) -> u32 {
    pci::find_class(p, 0x03_00, 0)
        .map(|bdf| pci::read32(p, bdf, 0x10) & 0xFFFF_FFF0)
        .filter(|&a| a != 0)
        .unwrap_or(DEFAULT_LFB)
}

const FAILED: u16 = 0x014F;
const OK: u16 = 0x004F;

pub fn int10_4f(st: &mut BiosState, c: &mut Call) -> Outcome {
    if !present(c.p) {
        return Outcome::Return;
    }
    let ax = match c.r.al() {
        0x00 => controller_info(c),
        0x01 => mode_info(c),
        0x02 => set_mode(st, c),
        0x03 => {
            let mode = if st.vbe_mode != 0 {
                st.vbe_mode
            } else {
                u16::from(crate::guest::rd8(c.p, crate::bda::VIDEO_MODE))
            };
            c.set_bx(mode);
            OK
        }
        0x05 => window(c),
        0x06 => scan_line(st, c),
        0x07 => display_start(c),
        0x08 => {
            c.set8h(r::BX, 6);
            if c.r.bl() == 0 || c.r.bl() == 1 {
                OK
            } else {
                FAILED
            }
        }
        0x09 => palette_data(c),
        _ => FAILED,
    };
    c.set_ax(ax);
    Outcome::Return
}

fn controller_info(c: &mut Call) -> u16 {
    let at = c.addr(SegReg::Es, c.r.di());
    let vbe2 = read_vec(c.p, at, 4) == b"VBE2";
    let mut b = vec![0u8; if vbe2 { 512 } else { 256 }];
    b[0..4].copy_from_slice(b"VESA");
    b[4..6].copy_from_slice(&0x0300u16.to_le_bytes());
    let far = |off: u16| ((0xF000u32) << 16) | u32::from(off);
    b[6..10].copy_from_slice(&far(crate::rom_layout::F_VBE_OEM).to_le_bytes());
    // The mode list lives in the block's own reserved area, as VBE allows.
    let list = (u32::from(c.sel(SegReg::Es)) << 16) | u32::from(c.r.di().wrapping_add(0x22));
    b[14..18].copy_from_slice(&list.to_le_bytes());
    let vram = vram_bytes(c.p);
    b[18..20].copy_from_slice(&((vram >> 16).min(0xFFFF) as u16).to_le_bytes());
    b[20..22].copy_from_slice(&0x0100u16.to_le_bytes());
    b[22..26].copy_from_slice(&far(crate::rom_layout::F_VBE_VENDOR).to_le_bytes());
    b[26..30].copy_from_slice(&far(crate::rom_layout::F_VBE_PRODUCT).to_le_bytes());
    b[30..34].copy_from_slice(&far(crate::rom_layout::F_VBE_REVISION).to_le_bytes());
    let mut at_list = 0x22;
    for m in &VBE_MODES {
        if fits(c.p, m) {
            b[at_list..at_list + 2].copy_from_slice(&m.0.to_le_bytes());
            at_list += 2;
        }
    }
    b[at_list..at_list + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
    c.p.write_mem(at, &b);
    OK
}

fn find(mode: u16) -> Option<&'static (u16, u16, u16, u8)> {
    VBE_MODES.iter().find(|m| m.0 == mode & 0x1FF)
}

/// (mask size, field position) of red, green, blue, reserved.
fn masks(bpp: u8) -> [(u8, u8); 4] {
    match bpp {
        15 => [(5, 10), (5, 5), (5, 0), (1, 15)],
        16 => [(5, 11), (6, 5), (5, 0), (0, 0)],
        24 => [(8, 16), (8, 8), (8, 0), (0, 0)],
        32 => [(8, 16), (8, 8), (8, 0), (8, 24)],
        _ => [(0, 0); 4],
    }
}

fn mode_info(c: &mut Call) -> u16 {
    let Some(m) = find(c.r.cx()) else {
        return FAILED;
    };
    let &(_, w, h, bpp) = m;
    let mut b = [0u8; 256];
    let put16 =
        |b: &mut [u8; 256], at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    // Supported, extended information, colour, graphics, linear frame buffer.
    put16(&mut b, 0, 0x009B);
    b[2] = 0x07;
    put16(&mut b, 4, 64);
    put16(&mut b, 6, 64);
    put16(&mut b, 8, 0xA000);
    let line = pitch(w, bpp) as u16;
    put16(&mut b, 16, line);
    put16(&mut b, 18, w);
    put16(&mut b, 20, h);
    b[22] = 8;
    b[23] = 16;
    b[24] = 1;
    b[25] = bpp;
    b[26] = 1;
    b[27] = if bpp == 8 { 4 } else { 6 };
    let vram = vram_bytes(c.p);
    let pages = (vram / (u32::from(line) * u32::from(h)).max(1)).clamp(1, 256) - 1;
    b[29] = pages as u8;
    b[30] = 1;
    let mk = masks(bpp);
    for (i, (size, pos)) in mk.iter().enumerate() {
        b[31 + i * 2] = *size;
        b[32 + i * 2] = *pos;
        b[54 + i * 2] = *size;
        b[55 + i * 2] = *pos;
    }
    let lfb = lfb(c.p);
    b[40..44].copy_from_slice(&lfb.to_le_bytes());
    put16(&mut b, 50, line);
    b[52] = pages as u8;
    b[53] = pages as u8;
    b[62..66].copy_from_slice(&100_000_000u32.to_le_bytes());
    let at = c.addr(SegReg::Es, c.r.di());
    c.p.write_mem(at, &b);
    OK
}

fn set_mode(st: &mut BiosState, c: &mut Call) -> u16 {
    let bx = c.r.bx();
    if bx & 0x1FF < 0x100 {
        return if crate::video::set_mode(st, c.p, (bx as u8) | ((bx >> 8) as u8 & 0x80)) {
            OK
        } else {
            FAILED
        };
    }
    let Some(&(mode, w, h, bpp)) = find(bx) else {
        return FAILED;
    };
    let p = &mut *c.p;
    if !fits(p, &(mode, w, h, bpp)) {
        return FAILED;
    }
    dispi_write(p, REG_ENABLE, 0);
    dispi_write(p, REG_BPP, u16::from(bpp));
    dispi_write(p, REG_XRES, w);
    dispi_write(p, REG_YRES, h);
    dispi_write(p, REG_BANK, 0);
    dispi_write(p, REG_VIRT_WIDTH, w);
    dispi_write(p, REG_X_OFFSET, 0);
    dispi_write(p, REG_Y_OFFSET, 0);
    let mut enable = ENABLED;
    if bx & 0x4000 != 0 {
        enable |= LFB_ENABLED;
    }
    if bx & 0x8000 != 0 {
        enable |= NO_CLEAR;
    }
    dispi_write(p, REG_ENABLE, enable);
    if bpp == 8 {
        for (i, rgb) in DacPalette::Vga256.colors().into_iter().enumerate() {
            regs::dac_write(p, i as u8, rgb);
        }
    }
    st.vbe_mode = bx & 0xC1FF;
    wr8(p, crate::bda::VIDEO_MODE, 0x13);
    OK
}

fn window(c: &mut Call) -> u16 {
    if c.r.bl() != 0 {
        return FAILED;
    }
    match c.r.bh() {
        0 => {
            dispi_write(c.p, REG_BANK, c.r.dx());
            OK
        }
        1 => {
            let bank = dispi_read(c.p, REG_BANK);
            c.set_dx(bank);
            OK
        }
        _ => FAILED,
    }
}

fn scan_line(st: &BiosState, c: &mut Call) -> u16 {
    let Some(&(_, w, h, bpp)) = find(st.vbe_mode) else {
        return FAILED;
    };
    let bypp = bytes_per_pixel(bpp) as u16;
    let vram = vram_bytes(c.p);
    match c.r.bl() {
        0 => dispi_write(c.p, REG_VIRT_WIDTH, c.r.cx().max(w)),
        2 => dispi_write(c.p, REG_VIRT_WIDTH, (c.r.cx() / bypp).max(w)),
        3 => {
            let max_pixels = (vram / u32::from(h)).min(0xFFFF) as u16 / bypp;
            dispi_write(c.p, REG_VIRT_WIDTH, max_pixels);
        }
        1 => {}
        _ => return FAILED,
    }
    let pixels = dispi_read(c.p, REG_VIRT_WIDTH).max(1);
    let bytes = u32::from(pixels) * u32::from(bypp);
    c.set_bx(bytes.min(0xFFFF) as u16);
    c.set_cx(pixels);
    c.set_dx((vram / bytes.max(1)).min(0xFFFF) as u16);
    OK
}

fn display_start(c: &mut Call) -> u16 {
    match c.r.bl() & 0x7F {
        0 => {
            dispi_write(c.p, REG_X_OFFSET, c.r.cx());
            dispi_write(c.p, REG_Y_OFFSET, c.r.dx());
            OK
        }
        1 => {
            c.set8h(r::BX, 0);
            let x = dispi_read(c.p, REG_X_OFFSET);
            let y = dispi_read(c.p, REG_Y_OFFSET);
            c.set_cx(x);
            c.set_dx(y);
            OK
        }
        _ => FAILED,
    }
}

fn palette_data(c: &mut Call) -> u16 {
    let at = c.addr(SegReg::Es, c.r.di());
    let n = usize::from(c.r.cx().min(256));
    let first = c.r.dx();
    match c.r.bl() & 0x7F {
        0 => {
            let data = read_vec(c.p, at, n * 4);
            for (i, e) in data.chunks_exact(4).enumerate() {
                regs::dac_write(c.p, (usize::from(first) + i) as u8, [e[2], e[1], e[0]]);
            }
            OK
        }
        1 => {
            let mut out = Vec::with_capacity(n * 4);
            for i in 0..n {
                let [red, g, b] = regs::dac_read(c.p, (usize::from(first) + i) as u8);
                out.extend_from_slice(&[b, g, red, 0]);
            }
            c.p.write_mem(at, &out);
            OK
        }
        _ => FAILED,
    }
}
