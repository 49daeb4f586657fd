use super::*;
use nestor_device::testing::FakeContext;
use nestor_disk::MemDisk;

const SIZE_144: usize = 1_474_560;

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i / 512 * 13 + i % 512) as u8).collect()
}

/// The controller, a DMA controller and the machine's pull loop between them.
struct Rig {
    fdc: Fdc,
    dma: Dma,
    ctx: FakeContext,
    disk: MemDisk,
}

impl Rig {
    /// A 1.44M disk in drive A:, the controller out of reset, DMA set up as at POST.
    fn new() -> Self {
        Self::with_disk(MemDisk::new(image(SIZE_144)))
    }

    fn with_disk(disk: MemDisk) -> Self {
        let mut fdc = Fdc::new();
        fdc.insert_media(0, Box::new(disk.clone())).unwrap();
        let mut rig = Self {
            fdc,
            dma: Dma::new(),
            ctx: FakeContext::with_ram(0x10_0000),
            disk,
        };
        rig.dma_out(0xd6, 0xc0); // cascade
        rig.dma_out(0xd4, 0x00);
        rig.out(0x3f2, 0x00);
        rig.out(0x3f2, 0x0c);
        for drive in 0..4 {
            rig.cmd(&[0x08]);
            assert_eq!(rig.result(), [0xc0 | drive, 0]);
        }
        rig.out(0x3f7, 0x00); // 500 kb/s
        rig.cmd(&[0x03, 0xaf, 0x02]); // SPECIFY, DMA mode
        rig
    }

    /// What the machine does after every FDC or DMA port access.
    fn service(&mut self) {
        while self.fdc.dma_pending() && self.fdc.dma_transfer(&mut self.dma, &mut self.ctx) {}
    }

    fn out(&mut self, port: u16, value: u8) {
        self.fdc.io_write(port, 1, u32::from(value), &mut self.ctx);
        self.service();
    }

    fn inb(&mut self, port: u16) -> u8 {
        self.fdc.io_read(port, 1, &mut self.ctx) as u8
    }

    fn dma_out(&mut self, port: u16, value: u8) {
        self.dma.io_write(port, 1, u32::from(value), &mut self.ctx);
        self.service();
    }

    fn cmd(&mut self, bytes: &[u8]) {
        for &b in bytes {
            assert_eq!(self.inb(0x3f4) & 0xc0, 0x80, "ready for a command byte");
            self.out(0x3f5, b);
        }
    }

    fn result(&mut self) -> Vec<u8> {
        let mut r = Vec::new();
        while self.inb(0x3f4) & 0xc0 == 0xc0 {
            r.push(self.inb(0x3f5));
        }
        r
    }

    /// Channel 2 as the BIOS programs it: mode 0x46 (to memory) or 0x4A (from memory).
    fn program_dma(&mut self, mode: u8, addr: u32, len: u16) {
        self.dma_out(0x0a, 0x06);
        self.dma_out(0x0c, 0);
        self.dma_out(0x0b, mode);
        self.dma_out(0x04, addr as u8);
        self.dma_out(0x04, (addr >> 8) as u8);
        self.dma_out(0x81, (addr >> 16) as u8);
        self.dma_out(0x05, (len - 1) as u8);
        self.dma_out(0x05, ((len - 1) >> 8) as u8);
        self.dma_out(0x0a, 0x02);
    }
}

fn lba(c: usize, h: usize, r: usize) -> usize {
    (c * 2 + h) * 18 + r - 1
}

#[test]
fn read_data_of_sector_1_via_dma_channel_2() {
    let mut rig = Rig::new();
    rig.cmd(&[0x07, 0x00]); // RECALIBRATE
    assert!(rig.ctx.irq(6));
    rig.cmd(&[0x08]);
    assert_eq!(rig.result(), [0x20, 0]);
    assert!(!rig.ctx.irq(6));
    rig.program_dma(0x46, 0x7c00, 512);
    rig.cmd(&[0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
    assert!(rig.ctx.irq(6), "done at once");
    assert_eq!(rig.result(), [0x00, 0x00, 0x00, 0, 0, 2, 2]);
    assert!(!rig.ctx.irq(6), "reading the result acknowledges");
    assert_eq!(rig.ctx.ram[0x7c00..0x7e00], image(SIZE_144)[..512]);
    assert_eq!(
        rig.dma.state().controller1.channel2.current_count,
        0xffff,
        "TC"
    );
}

#[test]
fn multitrack_read_crosses_to_head_1_and_stops_at_tc() {
    let mut rig = Rig::new();
    rig.cmd(&[0x0f, 0x00, 5]); // SEEK to cylinder 5
    rig.cmd(&[0x08]);
    assert_eq!(rig.result(), [0x20, 5]);
    rig.program_dma(0x46, 0x1_0000, 4 * 512);
    rig.cmd(&[0xe6, 0x00, 5, 0, 17, 2, 18, 0x1b, 0xff]);
    assert_eq!(
        rig.result(),
        [0x04, 0, 0, 5, 1, 3, 2],
        "next ID: head 1, sector 3"
    );
    let img = image(SIZE_144);
    let want: Vec<u8> = [(0, 17), (0, 18), (1, 1), (1, 2)]
        .iter()
        .flat_map(|&(h, r)| img[lba(5, h, r) * 512..(lba(5, h, r) + 1) * 512].to_vec())
        .collect();
    assert_eq!(rig.ctx.ram[0x1_0000..0x1_0800], want[..]);
}

#[test]
fn end_of_track_without_tc_is_end_of_cylinder() {
    let mut rig = Rig::new();
    rig.program_dma(0x46, 0x2_0000, 8 * 512); // more than the track holds
    rig.cmd(&[0x46, 0x00, 0, 0, 17, 2, 18, 0x1b, 0xff]);
    assert_eq!(rig.result(), [0x40, 0x80, 0, 1, 0, 1, 2]);
}

#[test]
fn write_data_and_format_track_reach_the_image() {
    let mut rig = Rig::new();
    rig.cmd(&[0x0f, 0x04, 2]); // cylinder 2, head 1
    rig.cmd(&[0x08]);
    rig.result();
    rig.ctx.ram[0x3000..0x3400].fill(0x77);
    rig.program_dma(0x4a, 0x3000, 1024);
    rig.cmd(&[0xc5, 0x04, 2, 1, 4, 2, 18, 0x1b, 0xff]);
    assert_eq!(rig.result(), [0x04, 0, 0, 2, 1, 6, 2]);
    let disk = rig.disk.contents();
    assert!(disk[lba(2, 1, 4) * 512..lba(2, 1, 6) * 512]
        .iter()
        .all(|&b| b == 0x77));
    assert_eq!(
        disk[lba(2, 1, 6) * 512],
        image(SIZE_144)[lba(2, 1, 6) * 512]
    );
    // FORMAT TRACK of cylinder 2 head 1: 18 IDs, filler 0xF6.
    for r in 1..=18u8 {
        let at = 0x4000 + 4 * usize::from(r - 1);
        rig.ctx.ram[at..at + 4].copy_from_slice(&[2, 1, r, 2]);
    }
    rig.program_dma(0x4a, 0x4000, 18 * 4);
    rig.cmd(&[0x4d, 0x04, 2, 18, 0x54, 0xf6]);
    assert_eq!(rig.result()[..3], [0x04, 0, 0]);
    let disk = rig.disk.contents();
    assert!(disk[lba(2, 1, 1) * 512..lba(2, 1, 19) * 512]
        .iter()
        .all(|&b| b == 0xf6));
    assert_eq!(
        disk[lba(3, 0, 1) * 512],
        image(SIZE_144)[lba(3, 0, 1) * 512]
    );
}

#[test]
fn errors_are_reported_in_the_status_bytes() {
    let mut rig = Rig::new();
    rig.program_dma(0x46, 0x5000, 512);
    rig.out(0x3f7, 0x02); // 250 kb/s: a 1.44M disk is unreadable
    rig.cmd(&[0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff]);
    assert_eq!(rig.result()[..3], [0x40, 0x01, 0x00]);
    rig.out(0x3f7, 0x00);
    rig.cmd(&[0xe6, 0x00, 3, 0, 1, 2, 18, 0x1b, 0xff]); // heads are on cylinder 0
    assert_eq!(rig.result()[..3], [0x40, 0x04, 0x10]);
    rig.cmd(&[0xe6, 0x00, 0, 0, 19, 2, 19, 0x1b, 0xff]); // no sector 19
    assert_eq!(rig.result()[..3], [0x40, 0x04, 0x00]);
    rig.cmd(&[0xe6, 0x01, 0, 0, 1, 2, 18, 0x1b, 0xff]); // drive B: is empty
    assert_eq!(rig.result()[..3], [0x41, 0x01, 0x00]);
    rig.cmd(&[0x1f]); // not a command
    assert_eq!(rig.result(), [0x80]);
    // Implied seek (CONFIGURE EIS) reaches cylinder 3 without a SEEK.
    rig.cmd(&[0x13, 0, 0x60, 0]);
    rig.cmd(&[0xe6, 0x00, 3, 0, 1, 2, 18, 0x1b, 0xff]);
    assert_eq!(rig.result()[..3], [0x00, 0x00, 0x00]);
}

#[test]
fn write_protected_disks_refuse_writes() {
    let mut rig = Rig::with_disk(MemDisk::new(image(737_280)).read_only());
    rig.out(0x3f7, 0x02); // 720K: 250 kb/s
    rig.cmd(&[0x04, 0x00]);
    assert_eq!(
        rig.result(),
        [0x78],
        "write protected, ready, track 0, two-sided"
    );
    rig.program_dma(0x4a, 0x5000, 512);
    rig.cmd(&[0xc5, 0x00, 0, 0, 1, 2, 9, 0x1b, 0xff]);
    assert_eq!(rig.result()[..2], [0x40, 0x02]);
}

#[test]
fn read_id_seek_and_the_disk_change_line() {
    let mut rig = Rig::new();
    assert_eq!(rig.inb(0x3f7) & 0x80, 0x80, "a disk was inserted");
    rig.cmd(&[0x0f, 0x00, 10]);
    rig.cmd(&[0x08]);
    assert_eq!(rig.result(), [0x20, 10]);
    assert_eq!(rig.inb(0x3f7) & 0x80, 0, "the step cleared it");
    rig.cmd(&[0x4a, 0x04]);
    assert!(rig.ctx.irq(6));
    assert_eq!(rig.result(), [0x04, 0, 0, 10, 1, 1, 2]);
    let old = rig.fdc.eject_media(0);
    assert!(old.is_some());
    assert_eq!(rig.inb(0x3f7) & 0x80, 0x80);
    rig.cmd(&[0x4a, 0x00]);
    assert_eq!(rig.result()[..2], [0x40, 0x01]);
    rig.cmd(&[0x08]);
    assert_eq!(rig.result(), [0x80], "nothing pending");
}

#[test]
fn configuration_commands() {
    let mut rig = Rig::new();
    rig.cmd(&[0x10]);
    assert_eq!(rig.result(), [0x90]);
    rig.cmd(&[0x13, 0, 0x57, 0x10]); // CONFIGURE
    rig.cmd(&[0x12, 0x83]); // PERPENDICULAR: OW, drive 0
    rig.cmd(&[0x94]); // LOCK
    assert_eq!(rig.result(), [0x10]);
    rig.cmd(&[0x0e]);
    let dump = rig.result();
    assert_eq!(dump.len(), 10);
    assert_eq!(dump[4..6], [0xaf, 0x02], "SPECIFY bytes");
    assert_eq!(dump[7], 0x80 | 0x03);
    assert_eq!(dump[8..], [0x57, 0x10]);
    // A locked configuration survives a reset through the DOR.
    rig.out(0x3f2, 0x08);
    assert_eq!(rig.inb(0x3f4), 0, "in reset");
    rig.out(0x3f2, 0x0c);
    rig.cmd(&[0x0e]);
    assert_eq!(rig.result()[8], 0x57);
    rig.cmd(&[0x14]);
    assert_eq!(rig.result(), [0x00]);
    rig.out(0x3f4, 0x80); // DSR software reset
    assert!(rig.ctx.irq(6));
    rig.cmd(&[0x0e]);
    assert_eq!(rig.result()[8], 0x20, "unlocked: defaults again");
}

#[test]
fn non_dma_mode_reads_through_the_fifo() {
    let mut rig = Rig::new();
    rig.cmd(&[0x03, 0xaf, 0x03]); // SPECIFY with ND
    rig.cmd(&[0x46, 0x00, 0, 0, 18, 2, 18, 0x1b, 0xff]);
    assert_eq!(rig.inb(0x3f4), 0xf0, "RQM DIO NDMA BUSY");
    let data: Vec<u8> = (0..512).map(|_| rig.inb(0x3f5)).collect();
    assert_eq!(data, image(SIZE_144)[17 * 512..18 * 512]);
    // No TC without DMA: the track's end stops the command.
    assert_eq!(rig.result()[..2], [0x40, 0x80]);
}

#[test]
fn uncollected_reset_polls_give_way_to_a_seek_status() {
    let mut rig = Rig::new();
    rig.out(0x3f2, 0x08);
    rig.out(0x3f2, 0x0c);
    rig.cmd(&[0x08]); // one SENSE INTERRUPT only, as SeaBIOS does
    assert_eq!(rig.result(), [0xc0, 0]);
    rig.cmd(&[0x07, 0x01]); // RECALIBRATE B:
    rig.cmd(&[0x08]);
    assert_eq!(rig.result(), [0x21, 0]);
}

#[test]
fn geometry_follows_the_image_size() {
    let g = |n| Geometry::from_size(n).map(|g| (g.tracks, g.heads, g.sectors));
    assert_eq!(g(1_474_560), Some((80, 2, 18)));
    assert_eq!(g(2_949_120), Some((80, 2, 36)));
    assert_eq!(g(737_280), Some((80, 2, 9)));
    assert_eq!(g(368_640), Some((40, 2, 9)));
    assert_eq!(g(1000), None);
    let mut fdc = Fdc::new();
    assert!(fdc
        .insert_media(0, Box::new(MemDisk::new(vec![0; 1000])))
        .is_err());
    let tiny = Box::new(MemDisk::new(vec![0; 368_640]));
    assert!(matches!(
        fdc.insert_media(2, tiny),
        Err(FdcError::NoDrive(2))
    ));
    assert_eq!(fdc.geometry(0), None);
}

#[test]
fn state_round_trips() {
    let mut rig = Rig::new();
    rig.cmd(&[0x0f, 0x00, 7]);
    rig.cmd(&[0xe6, 0x00]); // half a command
    let mut copy = Fdc::new();
    copy.restore(&rig.fdc.save().unwrap()).unwrap();
    assert_eq!(copy.state(), rig.fdc.state());
    assert!(copy.restore(&rig.fdc.save().unwrap()[3..]).is_err());
}

#[test]
fn restored_controller_carries_on_a_waiting_dma_read() {
    let mut a = Rig::new();
    a.program_dma(0x46, 0x8000, 1024);
    a.dma_out(0x0a, 0x06); // mask channel 2: the read waits
    a.cmd(&[0xe6, 0x00, 0, 0, 3, 2, 18, 0x1b, 0xff]);
    assert!(a.fdc.dma_pending());
    let mut b_fdc = Fdc::new();
    b_fdc.reattach_backend(0, Some(Box::new(a.disk.clone())));
    b_fdc.restore(&a.fdc.save().unwrap()).unwrap();
    let mut b_dma = Dma::new();
    b_dma.restore(&a.dma.save().unwrap()).unwrap();
    let mut b = Rig {
        fdc: b_fdc,
        dma: b_dma,
        ctx: a.ctx.clone(),
        disk: a.disk.clone(),
    };
    for rig in [&mut a, &mut b] {
        rig.ctx.clear_events();
        rig.dma_out(0x0a, 0x02);
        assert_eq!(rig.result(), [0, 0, 0, 0, 0, 5, 2]);
    }
    assert_eq!(a.ctx.ram, b.ctx.ram);
    assert_eq!(a.ctx.irq_events, b.ctx.irq_events);
    assert_eq!(a.fdc.state(), b.fdc.state());
    assert_eq!(a.ctx.ram[0x8000..0x8400], image(SIZE_144)[2 * 512..4 * 512]);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut rig = Rig::new();
    rig.ctx = FakeContext::with_ram(0x1000);
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = [
            0x3f0, 0x3f1, 0x3f2, 0x3f3, 0x3f4, 0x3f5, 0x3f5, 0x3f5, 0x3f7,
        ][(x % 9) as usize];
        let size = [1, 1, 2, 4][((x >> 8) % 4) as usize];
        if x & 0x1000 != 0 {
            let value = if port == 0x3f2 {
                0x0c | (x >> 20) as u32 & 0xf3
            } else {
                (x >> 20) as u32
            };
            rig.fdc.io_write(port, size, value, &mut rig.ctx);
        } else {
            rig.fdc.io_read(port, size, &mut rig.ctx);
        }
        if x & 0x3_0000 == 0 {
            rig.dma
                .io_write(((x >> 24) & 0xf) as u16, 1, (x >> 32) as u32, &mut rig.ctx);
        }
        rig.service();
    }
}

#[test]
fn plugin_builds_a_controller() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "fdc");
    assert!(
        !dev.ports().iter().any(|r| r.contains(0x3f6)),
        "0x3F6 is IDE's"
    );
    config.options.insert("x".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
