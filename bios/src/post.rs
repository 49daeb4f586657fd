//! Power-on self test: memory size, interrupt vectors, BDA and EBDA, the PICs, PIT, RTC,
//! keyboard controller, serial ports, video, drives, tables; then the option ROM scan.

use crate::bda;
use crate::call::{r, Call, Outcome};
use crate::disk::ata::{self, Probe, ProbeStage};
use crate::guest::{rd16, read_vec, wr16, wr32, wr8};
use crate::io::{cmos_read, cmos_write, inb, outb, PIC1_CMD, PIC1_DATA, PIC2_CMD, PIC2_DATA};
use crate::services::{layout, STUBS};
use crate::video::{self, print, set_vector};
use crate::{keyboard, pci, rom_layout, tables, BiosState, Platform, TrapResult};
use nestor_cpu::SegReg;

/// Left in EBX across RETRY traps: the POST service is resuming, not starting over.
const RESUMING: u32 = 0x504F_5354;

/// Drive positions probed: primary master, primary slave, secondary master, secondary slave.
const POSITIONS: u8 = 4;

pub fn run(st: &mut BiosState, c: &mut Call) -> Outcome {
    if c.r.get32(r::BX) != RESUMING {
        if let Some(outcome) = warm_restart(c) {
            return outcome;
        }
        init(st, c.p);
        st.probe = Some((0, ProbeStage::Start));
    }
    while let Some((pos, mut stage)) = st.probe {
        if pos >= POSITIONS {
            st.probe = None;
            break;
        }
        match ata::probe(c.p, pos / 2, pos % 2 == 1, &mut stage) {
            Probe::Busy => {
                st.probe = Some((pos, stage));
                c.set32(r::BX, RESUMING);
                return Outcome::Retry;
            }
            Probe::Absent => {}
            Probe::Found(dev) => {
                if dev.atapi {
                    st.disks.cd.push(dev);
                } else {
                    st.disks.hard.push(dev);
                }
            }
        }
        st.probe = Some((pos + 1, ProbeStage::Start));
    }
    c.set32(r::BX, 0);
    let lapic = c.cpu.msr.apic_base & (1 << 11) != 0;
    finish(st, c.p, lapic);
    Outcome::Return
}

/// CMOS shutdown codes 5 and 0Ah: a warm restart that resumes at the far pointer in 40:67
/// instead of running POST (code 5 also acknowledges the PIC, as after a 286 mode switch).
fn warm_restart(c: &mut Call) -> Option<Outcome> {
    let code = cmos_read(c.p, 0x0F);
    if code != 0 {
        cmos_write(c.p, 0x0F, 0);
    }
    if code != 0x05 && code != 0x0A {
        return None;
    }
    if code == 0x05 {
        outb(c.p, PIC2_CMD, 0x20);
        outb(c.p, PIC1_CMD, 0x20);
    }
    let off = rd16(c.p, bda::RESET_PTR);
    let seg = rd16(c.p, bda::RESET_PTR + 2);
    c.set_seg(SegReg::Cs, seg);
    c.cpu.rip = u64::from(off);
    Some(Outcome::Jumped(TrapResult::Continue))
}

/// Everything up to the drive probe.
fn init(st: &mut BiosState, p: &mut dyn Platform) {
    st.disks = Default::default();
    st.pending = None;
    st.floppy = None;
    st.fdc_ready = false;
    st.boot = None;
    st.cd_boot = None;
    st.wait_until_ns = None;
    st.vbe_mode = 0;
    st.option_rom_next = 0;
    size_memory(st, p);
    init_vectors(p);
    init_bda(p);
    init_pics(p);
    pci::init(p);
    // DMA: both 8237s cleared, channel 4 cascades the first controller (and must be unmasked
    // for channels 0-3 to work).
    outb(p, 0x0D, 0);
    outb(p, 0xDA, 0);
    outb(p, 0xD6, 0xC0);
    outb(p, 0xD4, 0x00);
    // PIT channel 0: mode 3, divisor 65536 (18.2 Hz).
    outb(p, 0x43, 0x36);
    outb(p, 0x40, 0);
    outb(p, 0x40, 0);
    // RTC: 32.768 kHz time base, 1024 Hz periodic rate; 24-hour BCD, no interrupts.
    cmos_write(p, 0x0A, 0x26);
    cmos_write(p, 0x0B, 0x02);
    cmos_read(p, 0x0C);
    cmos_read(p, 0x0D);
    // A20 on through system control port A.
    let a = inb(p, 0x92);
    outb(p, 0x92, (a | 0x02) & !0x01);
    keyboard::init_bda(p);
    init_keyboard_controller(p);
    let (serial, parallel) = init_ports(p);
    // FPU, PS/2 mouse, 80x25 colour, serial and parallel counts (floppies come later).
    let equipment = 0x0002 | 0x0004 | 0x0020 | (serial << 9) | (parallel << 14);
    wr16(p, bda::EQUIPMENT, equipment);
    video::set_mode(st, p, 0x03);
    print(st, p, "Nestor BIOS\r\n");
    let total_mib = (st.low_ram_end + st.high_ram) >> 20;
    print(st, p, &format!("Memory: {total_mib} MiB\r\n"));
}

/// RAM sizes from the CMOS (extended memory in KiB, 64 KiB units above 16 MiB and 4 GiB).
fn size_memory(st: &mut BiosState, p: &mut dyn Platform) {
    let word = |p: &mut dyn Platform, at: u8| {
        u64::from(cmos_read(p, at)) | (u64::from(cmos_read(p, at + 1)) << 8)
    };
    let ext_kib = word(p, 0x30);
    let above_16m = word(p, 0x34) << 16;
    let above_4g = (u64::from(cmos_read(p, 0x5B))
        | (u64::from(cmos_read(p, 0x5C)) << 8)
        | (u64::from(cmos_read(p, 0x5D)) << 16))
        << 16;
    st.low_ram_end = if above_16m > 0 {
        (16 << 20) + above_16m
    } else {
        (1 << 20) + (ext_kib << 10)
    };
    st.high_ram = above_4g;
}

fn init_vectors(p: &mut dyn Platform) {
    let mut ivt = Vec::with_capacity(1024);
    for v in 0..=255u8 {
        let off = match v {
            0x08..=0x0F => rom_layout::F_IRQ_MASTER_DEFAULT,
            0x70..=0x77 => rom_layout::F_IRQ_SLAVE_DEFAULT,
            0x05 => layout::F_INT05,
            _ => layout::F_IRET,
        };
        let (seg, off) = if (0x60..=0x67).contains(&v) {
            (0, 0)
        } else {
            (0xF000u16, off)
        };
        ivt.extend_from_slice(&off.to_le_bytes());
        ivt.extend_from_slice(&seg.to_le_bytes());
    }
    p.write_mem(bda::IVT, &ivt);
    for stub in STUBS {
        let Some(&(_, off)) = rom_layout::STUB_OFFSETS
            .iter()
            .find(|(s, _)| *s == stub.service)
        else {
            continue;
        };
        for &v in stub.vectors {
            set_vector(p, v, 0xF000, off);
        }
    }
    set_vector(p, 0x1E, 0xF000, layout::F_DISKETTE_TABLE);
    set_vector(p, 0x1D, 0, 0);
}

fn init_bda(p: &mut dyn Platform) {
    p.write_mem(bda::BDA, &[0u8; 0x100]);
    p.write_mem(bda::EBDA, &[0u8; 0x400]);
    wr8(p, bda::EBDA, bda::EBDA_KIB as u8);
    wr16(p, bda::EBDA_SEG, bda::EBDA_SEGMENT);
    wr16(p, bda::MEM_KIB, bda::CONVENTIONAL_KIB);
    for (i, off) in [bda::LPT_TIMEOUT, bda::COM_TIMEOUT].iter().enumerate() {
        let t = if i == 0 { 0x14 } else { 0x01 };
        wr32(p, *off, u32::from_le_bytes([t; 4]));
    }
}

/// Both 8259s: edge triggered, cascaded, vectors 08h and 70h; only the timer, keyboard,
/// cascade, floppy and IDE lines unmasked.
fn init_pics(p: &mut dyn Platform) {
    for (cmd, data, base, cascade) in [
        (PIC1_CMD, PIC1_DATA, 0x08, 0x04),
        (PIC2_CMD, PIC2_DATA, 0x70, 0x02),
    ] {
        outb(p, cmd, 0x11);
        outb(p, data, base);
        outb(p, data, cascade);
        outb(p, data, 0x01);
    }
    outb(p, PIC1_DATA, !(0x01 | 0x02 | 0x04 | 0x40));
    outb(p, PIC2_DATA, !(0x40 | 0x80));
}

/// i8042: drain it, then translation on, keyboard interrupt on, mouse off; scanning on.
fn init_keyboard_controller(p: &mut dyn Platform) {
    for _ in 0..16 {
        if inb(p, 0x64) & 0x01 == 0 {
            break;
        }
        inb(p, 0x60);
    }
    let wait_input = |p: &mut dyn Platform| {
        for _ in 0..1000 {
            if inb(p, 0x64) & 0x02 == 0 {
                return;
            }
        }
    };
    wait_input(p);
    outb(p, 0x64, 0x60);
    wait_input(p);
    outb(p, 0x60, 0x65);
    wait_input(p);
    outb(p, 0x60, 0xF4);
}

/// Finds the serial and parallel ports, fills their BDA tables, and sets COM1 to 115200
/// baud 8N1 for the text mirror. Returns (serial count, parallel count).
fn init_ports(p: &mut dyn Platform) -> (u16, u16) {
    let mut serial = 0u16;
    for base in [0x3F8u16, 0x2F8, 0x3E8, 0x2E8] {
        outb(p, base + 7, 0x5A);
        if inb(p, base + 7) == 0x5A && inb(p, base + 5) != 0xFF {
            wr16(p, bda::COM_PORTS + u64::from(serial) * 2, base);
            serial += 1;
        }
    }
    for (port, v) in [
        (0x3F9, 0x00),
        (0x3FB, 0x80),
        (0x3F8, 0x01),
        (0x3F9, 0x00),
        (0x3FB, 0x03),
        (0x3FA, 0xC7),
        (0x3FC, 0x03),
    ] {
        outb(p, port, v);
    }
    let mut parallel = 0u16;
    for base in [0x378u16, 0x278, 0x3BC] {
        outb(p, base, 0xAA);
        if inb(p, base) == 0xAA {
            wr16(p, bda::LPT_PORTS + u64::from(parallel) * 2, base);
            parallel += 1;
        }
    }
    (serial, parallel)
}

/// After the drive probe: floppies, disk tables, the drive list on screen, and the tables.
fn finish(st: &mut BiosState, p: &mut dyn Platform, lapic: bool) {
    let types = cmos_read(p, 0x10);
    st.disks.floppy = [types >> 4, types & 0x0F];
    let floppies = st.disks.floppy.iter().filter(|t| **t != 0).count() as u16;
    if floppies > 0 {
        let eq = rd16(p, bda::EQUIPMENT) | 0x0001 | ((floppies - 1) << 6);
        wr16(p, bda::EQUIPMENT, eq);
    }
    wr8(p, bda::HD_COUNT, st.disks.hard.len().min(255) as u8);
    crate::disk::write_fdpt(p, &st.disks);
    for (i, d) in st.disks.hard.iter().enumerate() {
        let mib = (d.sectors * 512) >> 20;
        let line = format!("Drive {:02X}h: {} ({mib} MiB)\r\n", 0x80 + i, d.model);
        print(st, p, &line);
    }
    for (i, d) in st.disks.cd.iter().enumerate() {
        let line = format!("Drive {:02X}h: {} (CD-ROM)\r\n", 0xE0 + i, d.model);
        print(st, p, &line);
    }
    tables::build(st, p, lapic);
}

/// Option ROM scan, one ROM per call: BX = segment of the next valid ROM (its entry is
/// BX:0003), or 0 when the scan is over. AX = the PCI address of a PCI ROM's device.
pub fn next_option_rom(st: &mut BiosState, c: &mut Call) -> Outcome {
    let mut at = if st.option_rom_next == 0 {
        0xC_0000
    } else {
        st.option_rom_next
    };
    while at < 0xF_0000 {
        let head = read_vec(c.p, u64::from(at), 3);
        let len = u32::from(head[2]) * 512;
        if head[0] == 0x55 && head[1] == 0xAA && len > 0 {
            let body = read_vec(c.p, u64::from(at), len as usize);
            if body.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0 {
                st.option_rom_next = (at + len).next_multiple_of(0x800);
                c.set_bx((at >> 4) as u16);
                let bdf = pci_rom_device(c.p, &body).unwrap_or(0xFFFF);
                c.set_ax(bdf);
                return Outcome::Return;
            }
        }
        at += 0x800;
    }
    st.option_rom_next = 0;
    c.set_bx(0);
    Outcome::Return
}

/// The PCI function a ROM with a "PCIR" structure belongs to.
fn pci_rom_device(p: &mut dyn Platform, rom: &[u8]) -> Option<u16> {
    let at = usize::from(u16::from_le_bytes([*rom.get(0x18)?, *rom.get(0x19)?]));
    let pcir = rom.get(at..at + 8)?;
    if &pcir[..4] != b"PCIR" {
        return None;
    }
    let id = u32::from_le_bytes([pcir[4], pcir[5], pcir[6], pcir[7]]);
    pci::devices(p)
        .into_iter()
        .find(|&bdf| pci::read32(p, bdf, 0) == id)
}
