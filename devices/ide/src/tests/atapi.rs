use super::*;

const BLOCKS: u64 = 40;

fn disc() -> Box<dyn BlockBackend> {
    Box::new(
        MemDisk::new(pattern(BLOCKS, 2048))
            .with_sector_size(2048)
            .read_only(),
    )
}

/// A CD-ROM drive as primary master, with the test disc or empty.
fn cd_rig(with_disc: bool) -> Rig {
    let mut ide = Ide::new();
    ide.attach_cdrom(Channel::Primary, Position::Master, with_disc.then(disc));
    Rig {
        ide,
        ctx: FakeContext::with_ram(0x10000),
        disk: MemDisk::new(Vec::new()),
    }
}

/// Send a command packet with a byte count limit; collect the data the drive sends, DRQ block
/// by DRQ block. Returns the final status and the data.
fn packet(rig: &mut Rig, cdb: &[u8], limit: u16) -> (u8, Vec<u8>) {
    rig.out(0x1f6, 0xa0);
    rig.out(0x1f1, 0);
    rig.out(0x1f4, limit as u8);
    rig.out(0x1f5, (limit >> 8) as u8);
    rig.out(0x1f7, 0xa0);
    assert_eq!(rig.alt() & 0x08, 0x08, "DRQ for the packet");
    assert_eq!(rig.inb(0x1f2), 0x01, "CoD: waiting for a command");
    let mut bytes = cdb.to_vec();
    bytes.resize(12, 0);
    rig.write_data(&bytes);
    let mut data = Vec::new();
    loop {
        assert!(rig.ctx.irq(14), "every phase interrupts");
        let status = rig.ack();
        if status & 0x08 == 0 {
            assert_eq!(rig.inb(0x1f2), 0x03, "status phase: IO and CoD");
            return (status, data);
        }
        assert_eq!(rig.inb(0x1f2), 0x02, "data to the host");
        let n = usize::from(rig.inb(0x1f4)) | usize::from(rig.inb(0x1f5)) << 8;
        assert!(n <= usize::from(limit.max(2)) || limit == 0);
        let mut block = rig.read_data(n + n % 2);
        block.truncate(n);
        data.extend(block);
    }
}

/// Sense key, ASC and ASCQ via REQUEST SENSE.
fn sense(rig: &mut Rig) -> (u8, u8, u8) {
    let (status, data) = packet(rig, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!(status & 0x01, 0);
    (data[2] & 0x0f, data[12], data[13])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[test]
fn identify_packet_device_and_the_ata_signature() {
    let mut rig = cd_rig(true);
    rig.out(0x1f6, 0xa0);
    rig.out(0x1f7, 0xec);
    assert_eq!(rig.ack(), 0x51, "IDENTIFY DEVICE is refused");
    let sig: Vec<u8> = (0x1f4..=0x1f5).map(|p| rig.inb(p)).collect();
    assert_eq!(sig, [0x14, 0xeb]);
    rig.out(0x1f7, 0xa1);
    assert_eq!(rig.ack(), 0x58);
    let data = rig.read_data(512);
    let w0 = u16::from_le_bytes([data[0], data[1]]);
    assert_eq!(w0, 0x85c0, "ATAPI CD-ROM, removable, 12-byte packets");
    let w49 = u16::from_le_bytes([data[98], data[99]]);
    assert_eq!(w49 & 0x0100, 0, "no DMA advertised");
    assert_eq!(data.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
    let model: Vec<u8> = data[54..94].chunks(2).flat_map(|p| [p[1], p[0]]).collect();
    assert!(String::from_utf8_lossy(&model).starts_with(CDROM_MODEL));
}

#[test]
fn inquiry_read_capacity_and_read10() {
    let mut rig = cd_rig(true);
    let (status, inq) = packet(&mut rig, &[0x12, 0, 0, 0, 36], 0xfffe);
    assert_eq!(status, 0x50);
    assert_eq!(inq.len(), 36);
    assert_eq!(inq[0], 0x05, "CD/DVD device");
    assert_eq!(inq[1], 0x80, "removable");
    assert_eq!(&inq[8..16], b"NESTOR  ");
    let (status, cap) = packet(&mut rig, &[0x25], 0xfffe);
    assert_eq!(status & 0x01, 0, "attached at power-on: no unit attention");
    assert_eq!(
        (be32(&cap[0..4]), be32(&cap[4..8])),
        (BLOCKS as u32 - 1, 2048)
    );
    // READ(10) of blocks 3-6 with a 4 KiB byte count limit: two DRQ blocks of 2 sectors.
    let (status, data) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 3, 0, 0, 4], 4096);
    assert_eq!(status, 0x50);
    assert_eq!(data, pattern(BLOCKS, 2048)[3 * 2048..7 * 2048]);
    // READ(12), with an odd limit rounded to whole blocks.
    let (_, data) = packet(&mut rig, &[0xa8, 0, 0, 0, 0, 39, 0, 0, 0, 1], 3001);
    assert_eq!(data, pattern(BLOCKS, 2048)[39 * 2048..]);
    let (status, data) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 0, 0, 0, 0], 2048);
    assert_eq!((status, data.len()), (0x50, 0), "zero blocks");
}

#[test]
fn reads_past_the_end_and_unknown_commands_fail_with_sense() {
    let mut rig = cd_rig(true);
    let (status, data) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 38, 0, 0, 3], 0xfffe);
    assert_eq!((status, data.len()), (0x51, 0));
    assert_eq!(rig.inb(0x1f1) >> 4, sense::ILLEGAL_REQUEST);
    assert_eq!(sense(&mut rig), (5, 0x21, 0));
    let (status, _) = packet(&mut rig, &[0xff], 0xfffe);
    assert_eq!(status, 0x51);
    assert_eq!(sense(&mut rig), (5, 0x20, 0));
    assert_eq!(sense(&mut rig), (0, 0, 0), "sense is cleared once reported");
    rig.out(0x1f1, 1); // PACKET asking for DMA
    rig.out(0x1f7, 0xa0);
    assert_eq!(rig.ack(), 0x51);
}

#[test]
fn media_change_empty_drive_and_events() {
    let mut rig = cd_rig(false);
    let (status, _) = packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(status, 0x51);
    assert_eq!(sense(&mut rig), (2, 0x3a, 1), "no medium, tray closed");
    let gesn = [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8];
    let (_, ev) = packet(&mut rig, &gesn, 0xfffe);
    assert_eq!(ev, [0, 6, 4, 0x10, 0, 0, 0, 0]);
    rig.ide
        .insert_media(Channel::Primary, Position::Master, disc())
        .unwrap();
    let (_, ev) = packet(&mut rig, &gesn, 0xfffe);
    assert_eq!(ev[4..6], [2, 2], "new media, present");
    let (_, ev) = packet(&mut rig, &gesn, 0xfffe);
    assert_eq!(ev[4], 0, "reported once");
    let (status, _) = packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(status, 0x51, "unit attention");
    assert_eq!(sense(&mut rig), (6, 0x28, 0));
    let (status, _) = packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(status, 0x50, "ready now");
    let (status, _) = packet(&mut rig, &[0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8], 0xfffe);
    assert_eq!(status, 0x51, "only polled GESN");
    let image = rig
        .ide
        .eject_media(Channel::Primary, Position::Master)
        .unwrap();
    assert!(image.is_some());
    let (_, ev) = packet(&mut rig, &gesn, 0xfffe);
    assert_eq!(ev[4..6], [3, 0], "media removal, absent");
    assert!(rig
        .ide
        .insert_media(Channel::Secondary, Position::Slave, disc())
        .is_err());
}

#[test]
fn guest_eject_respects_the_lock() {
    let mut rig = cd_rig(true);
    let (status, _) = packet(&mut rig, &[0x1e, 0, 0, 0, 1], 0xfffe);
    assert_eq!(status, 0x50);
    let (status, _) = packet(&mut rig, &[0x1b, 0, 0, 0, 2], 0xfffe);
    assert_eq!(status, 0x51);
    assert_eq!(sense(&mut rig), (5, 0x53, 2));
    packet(&mut rig, &[0x1e, 0, 0, 0, 0], 0xfffe);
    let (status, _) = packet(&mut rig, &[0x1b, 0, 0, 0, 2], 0xfffe);
    assert_eq!(status, 0x50);
    assert!(rig.ide.tray_open(Channel::Primary, Position::Master));
    packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(sense(&mut rig), (2, 0x3a, 2), "tray open");
    let (_, mech) = packet(&mut rig, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8], 0xfffe);
    assert_eq!(mech[1] & 0x10, 0x10);
    packet(&mut rig, &[0x1b, 0, 0, 0, 3], 0xfffe); // load
    packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(sense(&mut rig), (6, 0x28, 0), "the disc is back");
    let (status, _) = packet(&mut rig, &[0x00], 0xfffe);
    assert_eq!(status, 0x50);
}

#[test]
fn read_toc_formats() {
    let mut rig = cd_rig(true);
    let (_, toc) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(toc.len(), 20);
    assert_eq!(toc[..4], [0, 18, 1, 1]);
    assert_eq!(toc[4..12], [0, 0x14, 1, 0, 0, 0, 0, 0], "track 1 at LBA 0");
    assert_eq!(toc[12..16], [0, 0x14, 0xaa, 0]);
    assert_eq!(be32(&toc[16..20]), BLOCKS as u32, "lead-out");
    let (_, msf) = packet(&mut rig, &[0x43, 2, 0, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(msf[8..12], [0, 0, 2, 0], "track 1 at 00:02:00");
    assert_eq!(msf[16..20], [0, 0, 2, 40], "lead-out at 00:02:40");
    let (_, session) = packet(&mut rig, &[0x43, 0, 1, 0, 0, 0, 0, 0, 12], 0xfffe);
    assert_eq!(session, [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
    let (_, old_style) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40], 0xfffe);
    assert_eq!(old_style, session, "format in the control byte");
    let (status, _) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 5, 0, 12], 0xfffe);
    assert_eq!(status, 0x51, "no track 5");
    let (_, short) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 0, 0, 4], 0xfffe);
    assert_eq!(short.len(), 4, "cut to the allocation length");
}

#[test]
fn mode_sense_pages() {
    let mut rig = cd_rig(true);
    let (_, caps) = packet(&mut rig, &[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(caps.len(), 8 + 22);
    assert_eq!(
        u16::from_be_bytes([caps[0], caps[1]]) as usize,
        caps.len() - 2
    );
    assert_eq!(caps[8..10], [0x2a, 20]);
    let (_, all) = packet(&mut rig, &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    let codes: Vec<u8> = {
        let mut at = 8;
        let mut codes = Vec::new();
        while at < all.len() {
            codes.push(all[at]);
            at += 2 + usize::from(all[at + 1]);
        }
        codes
    };
    assert_eq!(codes, [0x01, 0x0d, 0x0e, 0x2a]);
    let (_, six) = packet(&mut rig, &[0x1a, 0, 0x01, 0, 0xff], 0xfffe);
    assert_eq!(six[4..6], [0x01, 0x06]);
    let (status, _) = packet(&mut rig, &[0x5a, 0, 0x05, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(status, 0x51);
    assert_eq!(sense(&mut rig), (5, 0x24, 0));
    packet(&mut rig, &[0x5a, 0, 0xea, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(sense(&mut rig), (5, 0x39, 0), "saved values");
}

#[test]
fn configuration_disc_information_and_small_byte_limits() {
    let mut rig = cd_rig(true);
    let (_, conf) = packet(&mut rig, &[0x46, 0, 0, 0, 0, 0, 0, 0x01, 0], 0xfffe);
    assert_eq!(conf[6..8], [0, 8], "current profile: CD-ROM");
    assert_eq!(be32(&conf[0..4]) as usize, conf.len() - 4);
    assert_eq!(conf[8..16], [0, 0, 3, 4, 0, 8, 1, 0], "profile list");
    let (_, one) = packet(&mut rig, &[0x46, 2, 0, 0x1e, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(one.len(), 8 + 8);
    assert_eq!(one[8..10], [0, 0x1e]);
    let (_, info) = packet(&mut rig, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34], 0xfffe);
    assert_eq!(info[2] & 3, 2, "complete disc");
    assert_eq!(packet(&mut rig, &[0xbb], 0xfffe).0, 0x50);
    // INQUIRY through a byte count limit of 8: five DRQ blocks (8, 8, 8, 8, 4).
    let (status, inq) = packet(&mut rig, &[0x12, 0, 0, 0, 36], 8);
    assert_eq!((status, inq.len()), (0x50, 36));
    assert_eq!(&inq[8..14], b"NESTOR");
    let empty = &mut cd_rig(false);
    let (_, conf) = packet(empty, &[0x46, 0, 0, 0, 0, 0, 0, 0, 0xff], 0xfffe);
    assert_eq!(conf[6..8], [0, 0], "no current profile without a disc");
}
