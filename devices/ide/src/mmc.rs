//! Response data of the MMC/SPC commands the CD-ROM drive answers (byte layouts from MMC-3
//! and SPC-2). Pure functions: the command handlers in `atapi.rs` pick and cut them.

/// Vendor, product and revision strings of INQUIRY.
const VENDOR: &[u8; 8] = b"NESTOR  ";
const PRODUCT: &[u8; 16] = b"CD-ROM          ";
const REVISION: &[u8; 4] = b"1.0 ";

/// Frames before LBA 0 on a CD (the 2-second pregap).
const PREGAP_FRAMES: u64 = 150;

/// CD-ROM profile number of GET CONFIGURATION.
const PROFILE_CDROM: u16 = 0x0008;

#[must_use]
pub fn inquiry() -> Vec<u8> {
    // CD/DVD device, removable, ATAPI version 2, response format 1, 31 more bytes.
    let mut d = vec![0x05, 0x80, 0x00, 0x21, 31, 0, 0, 0];
    d.extend_from_slice(VENDOR);
    d.extend_from_slice(PRODUCT);
    d.extend_from_slice(REVISION);
    d
}

/// Fixed-format sense data.
#[must_use]
pub fn sense_data(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
    let mut d = vec![0u8; 18];
    d[0] = 0x70;
    d[2] = key & 0x0f;
    d[7] = 10;
    d[12] = asc;
    d[13] = ascq;
    d
}

#[must_use]
pub fn read_capacity(blocks: u64) -> Vec<u8> {
    let last = blocks.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
    let mut d = last.to_be_bytes().to_vec();
    d.extend_from_slice(&2048u32.to_be_bytes());
    d
}

/// An address field: LBA, or minute/second/frame counted from the start of the disc.
fn address(lba: u64, msf: bool) -> [u8; 4] {
    if msf {
        let frames = lba + PREGAP_FRAMES;
        let minutes = (frames / (75 * 60)).min(255) as u8;
        [0, minutes, (frames / 75 % 60) as u8, (frames % 75) as u8]
    } else {
        (lba.min(u64::from(u32::MAX)) as u32).to_be_bytes()
    }
}

/// READ TOC/PMA/ATIP formats 0 (TOC) and 1 (session info) of a one-track data disc.
#[must_use]
pub fn toc(format: u8, msf: bool, track: u8, blocks: u64) -> Option<Vec<u8>> {
    // Track descriptor: reserved, ADR 1 / control 4 (data track), number, reserved, address.
    let descriptor = |number: u8, lba: u64| {
        let mut d = vec![0, 0x14, number, 0];
        d.extend_from_slice(&address(lba, msf));
        d
    };
    let mut d = match format {
        0 => {
            if track > 1 && track != 0xaa {
                return None;
            }
            let mut d = vec![0, 0, 1, 1];
            if track <= 1 {
                d.extend(descriptor(1, 0));
            }
            d.extend(descriptor(0xaa, blocks));
            d
        }
        1 => {
            let mut d = vec![0, 0, 1, 1];
            d.extend(descriptor(1, 0));
            d
        }
        _ => return None,
    };
    let len = (d.len() - 2) as u16;
    d[..2].copy_from_slice(&len.to_be_bytes());
    Some(d)
}

/// One feature descriptor: code, version, persistent/current flags and its data.
fn feature(code: u16, persistent: bool, current: bool, body: &[u8]) -> (u16, bool, Vec<u8>) {
    let flags = u8::from(persistent) << 1 | u8::from(current);
    let mut d = code.to_be_bytes().to_vec();
    d.extend_from_slice(&[flags, body.len() as u8]);
    d.extend_from_slice(body);
    (code, current, d)
}

/// GET CONFIGURATION: the CD-ROM profile and the features it needs, filtered by the request
/// type and starting feature of the command. `None` for an invalid request type.
#[must_use]
pub fn configuration(cdb: &[u8], media: bool) -> Option<Vec<u8>> {
    let rt = cdb.get(1).copied().unwrap_or(0) & 3;
    let start = u16::from(cdb.get(2).copied().unwrap_or(0)) << 8
        | u16::from(cdb.get(3).copied().unwrap_or(0));
    let profile = PROFILE_CDROM.to_be_bytes();
    let features = [
        feature(
            0x0000,
            true,
            true,
            &[profile[0], profile[1], u8::from(media), 0],
        ),
        feature(0x0001, true, true, &[0, 0, 0, 2]), // core: ATAPI interface
        feature(0x0002, true, true, &[0, 0, 0, 0]), // morphing
        feature(0x0003, true, true, &[0x29, 0, 0, 0]), // removable: tray, eject, lock
        feature(0x0010, false, media, &[0, 0, 8, 0, 0, 1, 0, 0]), // random readable, 2048
        feature(0x001e, false, media, &[0, 0, 0, 0]), // CD read
    ];
    let mut d = vec![0u8; 8];
    let current = if media { PROFILE_CDROM } else { 0 };
    d[6..8].copy_from_slice(&current.to_be_bytes());
    for (code, is_current, bytes) in features {
        let wanted = match rt {
            0 => code >= start,
            1 => code >= start && is_current,
            2 => code == start,
            _ => return None,
        };
        if wanted {
            d.extend(bytes);
        }
    }
    let len = (d.len() - 4) as u32;
    d[..4].copy_from_slice(&len.to_be_bytes());
    Some(d)
}

/// GET EVENT STATUS NOTIFICATION (polled): the media class if asked for, else "no event".
#[must_use]
pub fn event_status(wants_media: bool, event: u8, present: bool, tray_open: bool) -> Vec<u8> {
    if wants_media {
        let status = u8::from(present) << 1 | u8::from(tray_open);
        vec![0, 6, 0x04, 0x10, event & 0x0f, status, 0, 0]
    } else {
        // NEA: no event of the requested classes is available.
        vec![0, 2, 0x80, 0x10]
    }
}

/// READ DISC INFORMATION for a finalized single-session CD-ROM.
#[must_use]
pub fn disc_information() -> Vec<u8> {
    let mut d = vec![0u8; 34];
    d[1] = 32;
    d[2] = 0x0e; // last session complete, disc complete
    d[3] = 1; // first track
    d[4] = 1; // sessions
    d[5] = 1; // first track of the last session
    d[6] = 1; // last track of the last session
    d[7] = 0x20; // unrestricted use
    d[16..24].fill(0xff); // no lead-in / lead-out addresses to give
    d
}

/// MECHANISM STATUS: no changer, idle, door state.
#[must_use]
pub fn mechanism_status(tray_open: bool) -> Vec<u8> {
    vec![0, u8::from(tray_open) << 4, 0, 0, 0, 0, 0, 0]
}

/// Mode page `code` (0x3F: all), or the mask of its changeable bits (none are).
#[must_use]
pub fn mode_pages(code: u8, changeable: bool, locked: bool) -> Option<Vec<u8>> {
    let page = |code: u8| -> Option<Vec<u8>> {
        let mut p = match code {
            0x01 => vec![0x01, 0x06, 0, 5, 0, 0, 0, 0], // read error recovery, 5 retries
            0x0d => vec![0x0d, 0x06, 0, 0, 0, 60, 0, 75], // CD parameters: 60 s/min, 75 f/s
            // CD audio control: immediate, ports 0/1 on channels 0/1 at full volume.
            0x0e => vec![
                0x0e, 0x0e, 0x04, 0, 0, 0, 0, 0, 0x01, 0xff, 0x02, 0xff, 0, 0, 0, 0,
            ],
            0x2a => capabilities(locked),
            _ => return None,
        };
        if changeable {
            p[2..].fill(0);
        }
        Some(p)
    };
    if code == 0x3f {
        let mut all = Vec::new();
        for c in [0x01, 0x0d, 0x0e, 0x2a] {
            all.extend(page(c)?);
        }
        Some(all)
    } else {
        page(code)
    }
}

/// The CD capabilities and mechanical status page (2Ah).
fn capabilities(locked: bool) -> Vec<u8> {
    let mut p = vec![0u8; 22];
    p[0] = 0x2a;
    p[1] = 20;
    p[4] = 0x41; // audio play, multi-session
    p[6] = 0x29 | u8::from(locked) << 1; // tray, eject, lock supported, lock state
    p[8..10].copy_from_slice(&706u16.to_be_bytes()); // max read speed (4x), kB/s
    p[10..12].copy_from_slice(&256u16.to_be_bytes()); // volume levels
    p[12..14].copy_from_slice(&512u16.to_be_bytes()); // buffer, KiB
    p[14..16].copy_from_slice(&706u16.to_be_bytes()); // current read speed
    p
}

/// Medium type byte of the mode parameter header.
fn medium_type(media: bool) -> u8 {
    if media {
        0x01 // 120 mm CD-ROM, data only
    } else {
        0x70 // door closed, no disc
    }
}

/// MODE SENSE(10) data: 8-byte header, no block descriptor, the pages.
#[must_use]
pub fn mode_header10(pages: &[u8], media: bool) -> Vec<u8> {
    let mut d = vec![0, 0, medium_type(media), 0, 0, 0, 0, 0];
    d.extend_from_slice(pages);
    let len = (d.len() - 2).min(0xffff) as u16;
    d[..2].copy_from_slice(&len.to_be_bytes());
    d
}

/// MODE SENSE(6) data: 4-byte header, no block descriptor, the pages.
#[must_use]
pub fn mode_header6(pages: &[u8], media: bool) -> Vec<u8> {
    let mut d = vec![0, medium_type(media), 0, 0];
    d.extend_from_slice(pages);
    d[0] = (d.len() - 1).min(0xff) as u8;
    d
}
