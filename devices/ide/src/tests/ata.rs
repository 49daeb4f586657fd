use super::*;

fn words(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect()
}

/// An ATA string from IDENTIFY words (high byte first in each word).
fn ata_string(w: &[u16]) -> String {
    let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_be_bytes()).collect();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

fn identify(rig: &mut Rig) -> Vec<u16> {
    rig.out(0x1f6, 0xa0);
    rig.out(0x1f7, 0xec);
    assert!(rig.ctx.irq(14));
    assert_eq!(rig.ack(), 0x58);
    assert!(!rig.ctx.irq(14), "reading status acknowledges");
    let data = rig.read_data(512);
    assert_eq!(rig.alt(), 0x50);
    assert_eq!(
        data.iter().fold(0u8, |s, &b| s.wrapping_add(b)),
        0,
        "checksum"
    );
    words(&data)
}

#[test]
fn identify_device_describes_the_disk() {
    let mut rig = Rig::with_disk();
    let w = identify(&mut rig);
    assert_eq!(w[0], 0x0040);
    assert_eq!(ata_string(&w[27..47]), DISK_MODEL);
    assert_eq!(ata_string(&w[10..20]), "NESTOR0001");
    assert_eq!(ata_string(&w[23..27]), "1.0");
    assert_eq!((w[1], w[3], w[6]), (1, 16, 63), "default CHS geometry");
    assert_eq!(
        u32::from(w[60]) | u32::from(w[61]) << 16,
        64,
        "LBA28 capacity"
    );
    assert_eq!(w[100..104], [64, 0, 0, 0], "LBA48 capacity");
    assert_eq!(w[49] & 0x0300, 0x0300, "LBA and DMA");
    assert_ne!(w[83] & 0x0400, 0, "LBA48 supported");
    assert_ne!(w[86] & 0x0400, 0, "LBA48 enabled");
    assert_eq!(w[88] & 0x3f, 0x3f, "UDMA 0-5");
    assert_eq!(w[88] >> 8, 0x20, "UDMA 5 selected");
    assert_eq!(w[63] & 7, 7, "multiword DMA 0-2");
    assert_eq!(w[47] & 0xff, 16, "READ/WRITE MULTIPLE up to 16");
    assert_eq!(w[255] & 0xff, 0xa5);
}

#[test]
fn read_sectors_returns_the_pattern_with_an_interrupt_per_sector() {
    let mut rig = Rig::with_disk();
    rig.lba28(0x20, 5, 3);
    let image = pattern(64, 512);
    for lba in 5..8 {
        assert!(rig.ctx.irq(14), "sector {lba}");
        assert_eq!(rig.ack() & 0x08, 0x08);
        assert_eq!(rig.read_data(512), image[lba * 512..(lba + 1) * 512]);
    }
    assert!(
        !rig.ctx.irq(14),
        "no interrupt after the last block of a read"
    );
    assert_eq!(rig.alt(), 0x50);
}

#[test]
fn data_port_works_32_bits_wide() {
    let mut rig = Rig::with_disk();
    rig.lba28(0x20, 1, 1);
    rig.ack();
    let data: Vec<u8> = (0..128)
        .flat_map(|_| rig.ide.io_read(0x1f0, 4, &mut rig.ctx).to_le_bytes())
        .collect();
    assert_eq!(data, pattern(64, 512)[512..1024]);
    rig.lba28(0x30, 2, 1);
    for i in 0..128u32 {
        rig.outl(0x1f0, i * 0x0101_0101);
    }
    assert_eq!(rig.ack(), 0x50);
    assert_eq!(
        rig.disk.contents()[2 * 512 + 4 * 5..2 * 512 + 4 * 6],
        [5; 4]
    );
}

#[test]
fn write_sectors_reach_the_disk_block_by_block() {
    let mut rig = Rig::with_disk();
    rig.lba28(0x30, 40, 2);
    assert!(!rig.ctx.irq(14), "the first block needs no interrupt");
    assert_eq!(rig.alt(), 0x58);
    rig.write_data(&[0x11; 512]);
    assert!(rig.ctx.irq(14));
    assert_eq!(rig.ack(), 0x58);
    rig.write_data(&[0x22; 512]);
    assert!(rig.ctx.irq(14), "completion interrupt");
    assert_eq!(rig.ack(), 0x50);
    let image = rig.disk.contents();
    assert_eq!(image[40 * 512..41 * 512], [0x11; 512]);
    assert_eq!(image[41 * 512..42 * 512], [0x22; 512]);
    assert_eq!(
        image[42 * 512..43 * 512],
        pattern(64, 512)[42 * 512..43 * 512]
    );
}

#[test]
fn lba48_write_and_read_round_trip_above_28_bits() {
    let mut ide = Ide::new();
    let huge = SparseDisk {
        sectors: 1 << 36,
        written: HashMap::new(),
    };
    ide.attach_disk(Channel::Primary, Position::Master, Box::new(huge))
        .unwrap();
    let mut rig = Rig {
        ide,
        ctx: FakeContext::with_ram(0x10000),
        disk: MemDisk::new(Vec::new()),
    };
    let w = identify(&mut rig);
    assert_eq!(w[60..62], [0xffff, 0x0fff], "LBA28 capacity saturates");
    assert_eq!(w[100..104], [0, 0, 0x10, 0]);
    let lba = 0x9_8765_4321u64;
    rig.lba48(0x34, lba, 2);
    let data: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    rig.write_data(&data[..512]);
    rig.ack();
    rig.write_data(&data[512..]);
    assert_eq!(rig.ack(), 0x50);
    // The HOB bit reads back the high-order bytes written first.
    rig.lba48(0x24, lba, 2);
    rig.out(0x3f6, 0x80);
    assert_eq!(rig.inb(0x1f3), 0x87);
    assert_eq!(rig.inb(0x1f4), 0x09);
    assert_eq!(rig.inb(0x1f5), 0x00);
    rig.out(0x3f6, 0x00);
    assert_eq!(rig.inb(0x1f3), 0x21);
    rig.ack();
    let mut back = rig.read_data(512);
    rig.ack();
    back.extend(rig.read_data(512));
    assert_eq!(back, data);
    // The same sectors through a 28-bit command are out of reach: LBA bits 28+ are lost.
    rig.lba28(0x20, (lba & 0x0fff_ffff) as u32, 1);
    rig.ack();
    assert_ne!(rig.read_data(512), data[..512]);
}

#[test]
fn out_of_range_sectors_fail_with_idnf() {
    let mut rig = Rig::with_disk();
    for (cmd, lba, count) in [
        (0x20, 63, 2),
        (0x20, 64, 1),
        (0x30, 0x0fff_ffff, 1),
        (0x40, 60, 5),
    ] {
        rig.lba28(cmd, lba, count);
        assert_eq!(rig.ack(), 0x51, "command {cmd:#x} at {lba}");
        assert_eq!(rig.inb(0x1f1), error::IDNF);
    }
    rig.lba48(0x24, u64::MAX >> 16, 0);
    assert_eq!(rig.ack(), 0x51);
    assert_eq!(rig.inb(0x1f1), error::IDNF);
    rig.lba48(0x25, 63, 1); // READ DMA EXT of the last sector: fine
    assert_eq!(rig.alt() & 0x01, 0);
}

#[test]
fn read_write_multiple_use_the_block_size() {
    let mut rig = Rig::with_disk();
    rig.lba28(0xc4, 0, 4);
    assert_eq!(rig.ack(), 0x51, "multiple mode off: aborted");
    assert_eq!(rig.inb(0x1f1), error::ABRT);
    rig.out(0x1f2, 3);
    rig.out(0x1f7, 0xc6);
    assert_eq!(rig.ack(), 0x51, "3 is not a power of two");
    rig.out(0x1f2, 4);
    rig.out(0x1f7, 0xc6);
    assert_eq!(rig.ack(), 0x50);
    rig.lba48(0x39, 20, 6); // WRITE MULTIPLE EXT: blocks of 4 then 2
    rig.write_data(&[0xab; 4 * 512]);
    assert_eq!(rig.ack(), 0x58);
    rig.write_data(&[0xcd; 2 * 512]);
    assert_eq!(rig.ack(), 0x50);
    rig.lba28(0xc4, 20, 6);
    rig.ack();
    let first = rig.read_data(4 * 512);
    assert!(first.iter().all(|&b| b == 0xab));
    assert!(rig.ctx.irq(14), "second block");
    rig.ack();
    assert!(rig.read_data(2 * 512).iter().all(|&b| b == 0xcd));
    assert_eq!(identify(&mut rig)[59], 0x0104);
}

#[test]
fn flush_cache_reaches_the_backend() {
    let mut rig = Rig::with_disk();
    rig.out(0x1f7, 0xe7);
    assert_eq!(rig.ack(), 0x50);
    rig.out(0x1f7, 0xea);
    assert_eq!(rig.ack(), 0x50);
    assert_eq!(rig.disk.flushes(), 2);
    rig.ide.flush().unwrap();
    assert_eq!(rig.disk.flushes(), 3);
}

#[test]
fn chs_addressing_follows_initialize_device_parameters() {
    let mut rig = Rig::with_disk();
    // 4 heads, 8 sectors per track.
    rig.out(0x1f6, 0xa3);
    rig.out(0x1f2, 8);
    rig.out(0x1f7, 0x91);
    assert_eq!(rig.ack(), 0x50);
    // Cylinder 1, head 2, sector 3: LBA (1*4 + 2)*8 + 2 = 50.
    rig.out(0x1f6, 0xa2);
    rig.out(0x1f2, 1);
    rig.out(0x1f3, 3);
    rig.out(0x1f4, 1);
    rig.out(0x1f5, 0);
    rig.out(0x1f7, 0x20);
    rig.ack();
    assert_eq!(rig.read_data(512), pattern(64, 512)[50 * 512..51 * 512]);
    rig.out(0x1f3, 0); // sector 0 does not exist
    rig.out(0x1f7, 0x20);
    assert_eq!(rig.ack(), 0x51);
    let w = identify(&mut rig);
    assert_eq!((w[54], w[55], w[56]), (2, 4, 8));
}

#[test]
fn soft_reset_sets_signatures_and_nien_masks_the_irq() {
    let mut rig = Rig::with_disk();
    rig.ide
        .attach_cdrom(Channel::Primary, Position::Slave, None);
    rig.lba28(0x20, 0, 1);
    rig.out(0x3f6, 0x04);
    assert_eq!(rig.alt(), 0x80, "BSY during reset");
    rig.out(0x3f6, 0x00);
    assert!(!rig.ctx.irq(14));
    assert_eq!(rig.ack(), 0x50);
    let sig: Vec<u8> = (0x1f1..=0x1f6).map(|p| rig.inb(p)).collect();
    assert_eq!(sig, [0x01, 0x01, 0x01, 0x00, 0x00, 0xa0]);
    rig.out(0x1f6, 0xb0);
    let sig: Vec<u8> = (0x1f2..=0x1f5).map(|p| rig.inb(p)).collect();
    assert_eq!(sig, [0x01, 0x01, 0x14, 0xeb]);
    assert_eq!(rig.alt(), 0x00, "ATAPI: DRDY clear after reset");
    rig.out(0x1f6, 0xa0);
    rig.out(0x3f6, 0x02); // nIEN
    rig.out(0x1f7, 0xe7);
    assert!(!rig.ctx.irq(14));
    rig.out(0x3f6, 0x00);
    assert!(rig.ctx.irq(14), "the pending interrupt shows once enabled");
}

#[test]
fn unsupported_commands_abort() {
    let mut rig = Rig::with_disk();
    for cmd in [0x00, 0x08, 0xa0, 0xa1, 0xb0, 0xff] {
        rig.out(0x1f7, cmd);
        assert!(rig.ctx.irq(14));
        assert_eq!(rig.ack(), 0x51, "command {cmd:#x}");
        assert_eq!(rig.inb(0x1f1), error::ABRT);
    }
}

#[test]
fn set_features_power_and_diagnostics() {
    let mut rig = Rig::with_disk();
    rig.out(0x1f1, 0x03);
    rig.out(0x1f2, 0x42); // UDMA 2
    rig.out(0x1f7, 0xef);
    assert_eq!(rig.ack(), 0x50);
    assert_eq!(identify(&mut rig)[88] >> 8, 0x04);
    rig.out(0x1f1, 0x03);
    rig.out(0x1f2, 0x47); // UDMA 7: not offered
    rig.out(0x1f7, 0xef);
    assert_eq!(rig.ack(), 0x51);
    rig.out(0x1f1, 0x82); // write cache off
    rig.out(0x1f7, 0xef);
    rig.ack();
    assert_eq!(identify(&mut rig)[85] & 0x20, 0);
    rig.out(0x1f7, 0xe0); // STANDBY IMMEDIATE
    rig.ack();
    rig.out(0x1f7, 0xe5);
    rig.ack();
    assert_eq!(rig.inb(0x1f2), 0x00);
    rig.out(0x1f7, 0xe1);
    rig.ack();
    rig.out(0x1f7, 0xe5);
    rig.ack();
    assert_eq!(rig.inb(0x1f2), 0xff);
    rig.out(0x1f7, 0x90);
    assert!(rig.ctx.irq(14));
    rig.ack();
    assert_eq!(rig.inb(0x1f1), 0x01, "diagnostic passed");
    rig.out(0x1f7, 0x10); // RECALIBRATE
    assert_eq!(rig.ack(), 0x50);
    rig.lba28(0x70, 63, 0); // SEEK
    assert_eq!(rig.ack(), 0x50);
}

#[test]
fn read_only_disks_refuse_writes() {
    let image = MemDisk::new(pattern(8, 512)).read_only();
    let mut ide = Ide::new();
    ide.attach_disk(Channel::Primary, Position::Master, Box::new(image.clone()))
        .unwrap();
    let mut rig = Rig {
        ide,
        ctx: FakeContext::new(),
        disk: image,
    };
    rig.lba28(0x30, 0, 1);
    assert_eq!(rig.ack(), 0x51);
    rig.lba28(0x20, 0, 1);
    assert_eq!(rig.ack(), 0x58, "reads still work");
    assert!(Ide::new()
        .attach_disk(
            Channel::Primary,
            Position::Master,
            Box::new(MemDisk::new(vec![0; 100]))
        )
        .is_err());
}
