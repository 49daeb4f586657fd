//! Tests driving the controller through its ports with no CPU.

mod ata;
mod atapi;
mod dma;

use super::*;
use nestor_device::testing::FakeContext;
use nestor_disk::MemDisk;
use std::collections::HashMap;

const BM_BASE: u16 = 0xc000;

/// The byte at offset `i` of sector `lba` of the test images.
fn pattern_byte(lba: u64, i: usize) -> u8 {
    (lba as usize * 31 + i * 7 + i / 256) as u8
}

fn pattern(sectors: u64, sector_size: usize) -> Vec<u8> {
    (0..sectors)
        .flat_map(|lba| (0..sector_size).map(move |i| pattern_byte(lba, i)))
        .collect()
}

/// A controller, its context and handles on the images it holds.
struct Rig {
    ide: Ide,
    ctx: FakeContext,
    disk: MemDisk,
}

impl Rig {
    /// A 64-sector patterned disk as primary master.
    fn with_disk() -> Self {
        Self::with_disk_image(pattern(64, 512))
    }

    fn with_disk_image(image: Vec<u8>) -> Self {
        let disk = MemDisk::new(image);
        let mut ide = Ide::new();
        ide.attach_disk(Channel::Primary, Position::Master, Box::new(disk.clone()))
            .unwrap();
        ide.set_bus_master_base(Some(BM_BASE));
        Self {
            ide,
            ctx: FakeContext::with_ram(0x10_0000),
            disk,
        }
    }

    fn out(&mut self, port: u16, value: u8) {
        self.ide.io_write(port, 1, u32::from(value), &mut self.ctx);
    }

    fn outl(&mut self, port: u16, value: u32) {
        self.ide.io_write(port, 4, value, &mut self.ctx);
    }

    fn inb(&mut self, port: u16) -> u8 {
        self.ide.io_read(port, 1, &mut self.ctx) as u8
    }

    /// Status without acknowledging the interrupt.
    fn alt(&mut self) -> u8 {
        self.inb(0x3f6)
    }

    /// Read `n` bytes from the primary data port, 16 bits at a time.
    fn read_data(&mut self, n: usize) -> Vec<u8> {
        (0..n / 2)
            .flat_map(|_| (self.ide.io_read(0x1f0, 2, &mut self.ctx) as u16).to_le_bytes())
            .collect()
    }

    fn write_data(&mut self, bytes: &[u8]) {
        for pair in bytes.chunks(2) {
            let word = u16::from(pair[0]) | u16::from(*pair.get(1).unwrap_or(&0)) << 8;
            self.ide.io_write(0x1f0, 2, u32::from(word), &mut self.ctx);
        }
    }

    /// Issue a 28-bit LBA command on the primary master.
    fn lba28(&mut self, cmd: u8, lba: u32, count: u8) {
        self.out(0x1f6, 0xe0 | (lba >> 24) as u8 & 0x0f);
        self.out(0x1f2, count);
        self.out(0x1f3, lba as u8);
        self.out(0x1f4, (lba >> 8) as u8);
        self.out(0x1f5, (lba >> 16) as u8);
        self.out(0x1f7, cmd);
    }

    /// Issue a 48-bit LBA command: high bytes first, as the HOB registers want.
    fn lba48(&mut self, cmd: u8, lba: u64, count: u16) {
        self.out(0x1f6, 0x40);
        for (port, shift) in [(0x1f3, 24), (0x1f4, 32), (0x1f5, 40)] {
            self.out(port, (lba >> shift) as u8);
        }
        self.out(0x1f2, (count >> 8) as u8);
        self.out(0x1f2, count as u8);
        for (port, shift) in [(0x1f3, 0), (0x1f4, 8), (0x1f5, 16)] {
            self.out(port, (lba >> shift) as u8);
        }
        self.out(0x1f7, cmd);
    }

    /// Clear the interrupt the drive raised, returning the status.
    fn ack(&mut self) -> u8 {
        self.inb(0x1f7)
    }
}

/// A huge, sparse disk for LBA48 tests: unwritten sectors read as their pattern.
struct SparseDisk {
    sectors: u64,
    written: HashMap<u64, Vec<u8>>,
}

impl BlockBackend for SparseDisk {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        nestor_disk::check_range(offset, buf.len(), self.len())?;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            let (lba, within) = (at / 512, (at % 512) as usize);
            *b = match self.written.get(&lba) {
                Some(s) => s[within],
                None => pattern_byte(lba, within),
            };
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        nestor_disk::check_range(offset, buf.len(), self.len())?;
        for (i, b) in buf.iter().enumerate() {
            let at = offset + i as u64;
            let (lba, within) = (at / 512, (at % 512) as usize);
            let sector = self
                .written
                .entry(lba)
                .or_insert_with(|| (0..512).map(|j| pattern_byte(lba, j)).collect());
            sector[within] = *b;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.sectors * 512
    }
    fn read_only(&self) -> bool {
        false
    }
}

#[test]
fn state_round_trips() {
    let mut rig = Rig::with_disk();
    rig.ide
        .attach_cdrom(Channel::Secondary, Position::Slave, None);
    rig.lba28(0xc4, 3, 4); // READ MULTIPLE without SET MULTIPLE: aborted
    rig.lba28(0x20, 3, 2);
    rig.read_data(100); // mid-block
    let mut copy = Ide::new();
    copy.restore(&rig.ide.save().unwrap()).unwrap();
    assert_eq!(copy.state(), rig.ide.state());
    assert!(copy.restore(&rig.ide.save().unwrap()[2..]).is_err());
}

#[test]
fn restored_controller_carries_on_mid_transfer() {
    let mut a = Rig::with_disk();
    a.lba28(0x20, 10, 3);
    a.ack();
    let first = a.read_data(300);
    assert_eq!(first[..], pattern(64, 512)[10 * 512..10 * 512 + 300]);
    let mut b_ide = Ide::new();
    b_ide
        .attach_disk(Channel::Primary, Position::Master, Box::new(a.disk.clone()))
        .unwrap();
    b_ide.restore(&a.ide.save().unwrap()).unwrap();
    let mut b = Rig {
        ide: b_ide,
        ctx: a.ctx.clone(),
        disk: a.disk.clone(),
    };
    a.ctx.clear_events();
    b.ctx.clear_events();
    for rig in [&mut a, &mut b] {
        let mut rest = rig.read_data(212);
        rig.ack();
        rest.extend(rig.read_data(512));
        rig.ack();
        rest.extend(rig.read_data(512));
        assert_eq!(rest[..], pattern(64, 512)[10 * 512 + 300..13 * 512]);
        assert_eq!(rig.alt(), 0x50);
    }
    assert_eq!(a.ide.state(), b.ide.state());
    assert_eq!(a.ctx.irq_events, b.ctx.irq_events);
    assert_eq!(a.ctx.rising_edges(14), 2, "one per further block");
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut rig = Rig::with_disk();
    rig.ide.attach_cdrom(
        Channel::Primary,
        Position::Slave,
        Some(Box::new(MemDisk::new(pattern(8, 2048)))),
    );
    rig.ide
        .attach_disk(
            Channel::Secondary,
            Position::Master,
            Box::new(MemDisk::new(vec![0; 4096])),
        )
        .unwrap();
    rig.ctx = FakeContext::with_ram(0x1000);
    let ports: Vec<u16> = (0x1f0..0x1f8)
        .chain(0x170..0x178)
        .chain([0x3f6, 0x376])
        .chain(BM_BASE..BM_BASE + 16)
        .collect();
    let mut x: u64 = 0x0123_4567_89ab_cdef;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = ports[(x % ports.len() as u64) as usize];
        let size = [1, 2, 4][((x >> 8) % 3) as usize];
        let value = (x >> 16) as u32;
        if x & 0x40_0000 != 0 {
            // Mostly plausible command bytes, so that data phases are reached often.
            let value = if port & 7 == 7 && port < 0x200 && x & 0x80_0000 != 0 {
                [
                    0x20, 0x24, 0x30, 0x34, 0xc8, 0xca, 0x25, 0xa0, 0xa1, 0xec, 0xc4, 0xc6,
                ][((x >> 24) % 12) as usize]
            } else {
                value
            };
            rig.ide.io_write(port, size, value, &mut rig.ctx);
        } else {
            rig.ide.io_read(port, size, &mut rig.ctx);
        }
        if x.is_multiple_of(5000) {
            rig.ide.reset();
        }
    }
}

#[test]
fn plugin_builds_a_controller_at_its_pci_slot() {
    let mut config = DeviceConfig::default();
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "ide");
    let pci = dev.pci().unwrap();
    assert_eq!(pci.pci_slot(), DEFAULT_SLOT);
    assert_eq!(pci.config_read(0, 4), 0x7010_8086);
    assert_eq!(pci.config_read(0x08, 4) >> 8, 0x01_01_80);
    assert_eq!(
        pci.config_read(0x40, 4),
        0x8000_8000,
        "both channels decode"
    );
    config.options.insert("bogus".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}

#[test]
fn bar4_is_sized_and_programmed_through_config_space() {
    let mut ide = Ide::new();
    let mut ctx = FakeContext::new();
    assert_eq!(ide.bus_master_base(), None);
    assert_eq!(ide.ports().len(), 4, "only the legacy ports");
    let pci = ide.pci().unwrap();
    pci.config_write(0x20, 4, 0xffff_ffff, &mut ctx);
    assert_eq!(
        pci.config_read(0x20, 4),
        0xffff_fff1,
        "16 ports, I/O, sized over 32 bits"
    );
    pci.config_write(0x20, 4, 0xd000, &mut ctx);
    pci.config_write(0x04, 2, 0x0005, &mut ctx);
    assert!(ctx.remaps > 0);
    assert_eq!(ide.bus_master_base(), Some(0xd000));
    assert!(ide.ports().contains(&PortRange::new(0xd000, 16)));
    ide.reset();
    assert_eq!(ide.bus_master_base(), None);
}

#[test]
fn absent_drives_read_as_zero_and_take_no_commands() {
    let mut rig = Rig::with_disk();
    rig.out(0x1f6, 0xf0); // select the (absent) slave
    for port in 0x1f1..=0x1f7 {
        assert_eq!(rig.inb(port), 0, "port {port:#x}");
    }
    rig.out(0x1f7, 0xec);
    assert!(!rig.ctx.irq(14));
    assert_eq!(rig.inb(0x177), 0, "empty secondary channel");
    rig.out(0x1f6, 0xe0);
    assert_eq!(rig.alt(), 0x50);
}

/// A snapshot damaged byte by byte restores as an error, or as a state the controller then
/// runs without panicking.
#[test]
fn damaged_snapshots_never_panic() {
    let mut rig = Rig::with_disk();
    rig.ide
        .attach_cdrom(Channel::Secondary, Position::Master, None);
    rig.lba28(0x20, 2, 4);
    rig.read_data(10);
    let good = rig.ide.save().unwrap();
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[at] ^= flip;
            let mut ide = Ide::new();
            ide.attach_disk(
                Channel::Primary,
                Position::Master,
                Box::new(rig.disk.clone()),
            )
            .unwrap();
            if ide.restore(&bytes).is_ok() {
                let mut ctx = FakeContext::with_ram(0x1000);
                for port in [0x1f0, 0x1f7, 0x1f0, 0x170, 0x177] {
                    ide.io_read(port, 2, &mut ctx);
                }
                ide.io_write(0x1f0, 2, 0, &mut ctx);
                ide.io_write(0x1f7, 1, 0x20, &mut ctx);
            }
        }
    }
}
