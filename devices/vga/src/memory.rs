//! The CPU's view of video memory: the VGA data path behind the legacy window (planes,
//! latches, read and write modes, chain-4, odd/even), the banked VBE window and the linear
//! framebuffer.

use crate::Vga;

/// The graphics controller's logical function (data rotate register bits 3-4).
fn alu(function: u8, value: u8, latch: u8) -> u8 {
    match function & 3 {
        0 => value,
        1 => value & latch,
        2 => value | latch,
        _ => value ^ latch,
    }
}

/// All ones or all zeros from bit `plane` of `bits`.
fn expand(bits: u8, plane: usize) -> u8 {
    if bits & (1 << plane) != 0 {
        0xff
    } else {
        0
    }
}

impl Vga {
    pub(crate) fn mem_read(&mut self, addr: u64, data: &mut [u8]) {
        if let Some(off) = self.lfb_offset(addr) {
            for (i, b) in data.iter_mut().enumerate() {
                *b = self.state.vram.get(off + i).copied().unwrap_or(0xff);
            }
            return;
        }
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.legacy_read(addr.wrapping_add(i as u64));
        }
    }

    pub(crate) fn mem_write(&mut self, addr: u64, data: &[u8]) {
        if let Some(off) = self.lfb_offset(addr) {
            for (i, &b) in data.iter().enumerate() {
                if let Some(v) = self.state.vram.get_mut(off + i) {
                    *v = b;
                }
            }
            self.dirty.pages.mark(off, data.len());
        } else {
            for (i, &b) in data.iter().enumerate() {
                self.legacy_write(addr.wrapping_add(i as u64), b);
            }
        }
        self.touch();
    }

    /// Offset into VRAM of an address in the linear framebuffer, while it decodes.
    fn lfb_offset(&self, addr: u64) -> Option<usize> {
        let off = addr.checked_sub(self.lfb_window()?)?;
        usize::try_from(off)
            .ok()
            .filter(|&o| o < self.config.vram_bytes)
    }

    /// Offset of `addr` in the legacy window, if the window decodes it.
    fn window_offset(&self, addr: u64) -> Option<u32> {
        let (base, len) = self.legacy_window();
        let off = addr.checked_sub(base).filter(|&o| o < len)?;
        u32::try_from(off).ok()
    }

    /// VRAM offset of a window offset in a packed VBE mode (through the bank).
    fn banked(&self, off: u32) -> usize {
        (usize::from(self.state.vbe.bank) << 16) + off as usize
    }

    fn legacy_read(&mut self, addr: u64) -> u8 {
        let Some(off) = self.window_offset(addr) else {
            return 0xff;
        };
        let vbe = &self.state.vbe;
        if vbe.enabled() && vbe.bpp != 4 {
            let i = self.banked(off);
            return self.state.vram.get(i).copied().unwrap_or(0xff);
        }
        let plane_addr = if vbe.enabled() {
            off + (u32::from(vbe.bank) << 16)
        } else {
            off
        };
        self.planar_read(plane_addr)
    }

    fn legacy_write(&mut self, addr: u64, value: u8) {
        let Some(off) = self.window_offset(addr) else {
            return;
        };
        let vbe = &self.state.vbe;
        if vbe.enabled() && vbe.bpp != 4 {
            let i = self.banked(off);
            if let Some(v) = self.state.vram.get_mut(i) {
                *v = value;
            }
            self.dirty.pages.mark(i, 1);
            return;
        }
        let plane_addr = if vbe.enabled() {
            off + (u32::from(vbe.bank) << 16)
        } else {
            off
        };
        self.planar_write(plane_addr, value);
    }

    /// A CPU read through the VGA data path: loads the latches, then read mode 0 (one plane)
    /// or 1 (colour compare).
    fn planar_read(&mut self, off: u32) -> u8 {
        let s = &mut self.state;
        let (addr, plane) = if s.seq[4] & 0x08 != 0 {
            // Chain-4: the low two address bits pick the plane.
            (off & !3, (off & 3) as usize)
        } else if s.gc[5] & 0x10 != 0 {
            // Odd/even: address bit 0 picks plane 0/1 (or 2/3 with read map select bit 1).
            (off & !1, usize::from(s.gc[4] & 2) | (off & 1) as usize)
        } else {
            (off, usize::from(s.gc[4] & 3))
        };
        let base = addr as usize * 4;
        for (p, latch) in s.latches.iter_mut().enumerate() {
            *latch = s.vram.get(base + p).copied().unwrap_or(0);
        }
        if s.gc[5] & 0x08 == 0 {
            return s.latches[plane];
        }
        let (compare, care) = (s.gc[2], s.gc[7]);
        let mut differ = 0u8;
        for (p, &latch) in s.latches.iter().enumerate() {
            if care & (1 << p) != 0 {
                differ |= latch ^ expand(compare, p);
            }
        }
        !differ
    }

    /// A CPU write through the VGA data path into the planes the map mask (and chain-4 or
    /// odd/even addressing) enables.
    fn planar_write(&mut self, off: u32, value: u8) {
        let data = self.write_data(value);
        let s = &mut self.state;
        let mut planes = s.seq[2] & 0x0f;
        let addr = if s.seq[4] & 0x08 != 0 {
            planes &= 1 << (off & 3);
            off & !3
        } else if s.seq[4] & 0x04 == 0 {
            planes &= if off & 1 != 0 { 0b1010 } else { 0b0101 };
            off & !1
        } else {
            off
        };
        let base = addr as usize * 4;
        for (p, &byte) in data.iter().enumerate() {
            if planes & (1 << p) != 0 {
                if let Some(v) = s.vram.get_mut(base + p) {
                    *v = byte;
                }
                self.dirty.pages.mark(base + p, 1);
            }
        }
    }

    /// The four plane bytes write modes 0-3 make of a CPU byte and the latches.
    fn write_data(&self, value: u8) -> [u8; 4] {
        let gc = &self.state.gc;
        let latches = self.state.latches;
        let rotated = value.rotate_right(u32::from(gc[3] & 7));
        let function = (gc[3] >> 3) & 3;
        let (set_reset, enable_sr, bit_mask) = (gc[0], gc[1], gc[8]);
        let mut planes = [0u8; 4];
        let mask = match gc[5] & 3 {
            0 => {
                for (p, byte) in planes.iter_mut().enumerate() {
                    *byte = if enable_sr & (1 << p) != 0 {
                        expand(set_reset, p)
                    } else {
                        rotated
                    };
                }
                bit_mask
            }
            1 => return latches,
            2 => {
                for (p, byte) in planes.iter_mut().enumerate() {
                    *byte = expand(value, p);
                }
                bit_mask
            }
            _ => {
                for (p, byte) in planes.iter_mut().enumerate() {
                    *byte = expand(set_reset, p);
                }
                rotated & bit_mask
            }
        };
        let mut out = [0u8; 4];
        for p in 0..4 {
            let result = alu(function, planes[p], latches[p]);
            out[p] = (result & mask) | (latches[p] & !mask);
        }
        out
    }
}
