use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch folder removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nestor-disk-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 512) as u8).collect()
}

#[test]
fn raw_file_reads_writes_and_syncs() {
    let dir = Scratch::new();
    let path = dir.file("a.img", &pattern(8192));
    let mut disk = open(&path, OpenOptions::default()).unwrap();
    assert_eq!(disk.len(), 8192);
    assert_eq!(disk.sectors(), 16);
    assert!(!disk.read_only());
    let mut buf = [0u8; 16];
    disk.read_at(1000, &mut buf).unwrap();
    assert_eq!(buf[..], pattern(8192)[1000..1016]);
    disk.write_at(4096, b"hello").unwrap();
    disk.flush().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[4096..4101], b"hello");
    disk.write_at(100, b"bye").unwrap();
    drop(disk);
    assert_eq!(&std::fs::read(&path).unwrap()[100..103], b"bye");
}

#[test]
fn out_of_range_access_is_an_error() {
    let dir = Scratch::new();
    let path = dir.file("a.img", &pattern(1024));
    let mut disk = open(&path, OpenOptions::default()).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(
        disk.read_at(1020, &mut buf),
        Err(DiskError::OutOfRange { .. })
    ));
    assert!(matches!(
        disk.write_at(u64::MAX - 2, &buf),
        Err(DiskError::OutOfRange { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap().len(), 1024, "no growth");
}

#[test]
fn read_only_raw_refuses_writes() {
    let dir = Scratch::new();
    let path = dir.file("a.img", &pattern(1024));
    let opts = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    let mut disk = open(&path, opts).unwrap();
    assert!(disk.read_only());
    assert!(matches!(disk.write_at(0, b"x"), Err(DiskError::ReadOnly)));
    disk.flush().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), pattern(1024));
}

#[test]
fn snapshot_mode_keeps_the_file_untouched() {
    let dir = Scratch::new();
    let path = dir.file("a.img", &pattern(10_000));
    let opts = OpenOptions {
        snapshot: true,
        ..OpenOptions::default()
    };
    let mut disk = open(&path, opts).unwrap();
    assert!(!disk.read_only());
    // A write across a chunk boundary and the partial last chunk.
    disk.write_at(4090, &[0xee; 12]).unwrap();
    disk.write_at(9998, &[1, 2]).unwrap();
    disk.flush().unwrap();
    let mut buf = vec![0u8; 10_000];
    disk.read_at(0, &mut buf).unwrap();
    let mut expected = pattern(10_000);
    expected[4090..4102].fill(0xee);
    expected[9998..].copy_from_slice(&[1, 2]);
    assert_eq!(buf, expected);
    drop(disk);
    assert_eq!(std::fs::read(&path).unwrap(), pattern(10_000));
}

#[test]
fn overlay_reads_base_where_not_written() {
    let base = MemDisk::new(pattern(3 * 4096));
    let mut ov = Overlay::new(Box::new(base.clone()));
    ov.write_at(4096 + 10, &[9; 4]).unwrap();
    assert_eq!(ov.overlay_bytes(), 4096);
    let mut buf = vec![0; 3 * 4096];
    ov.read_at(0, &mut buf).unwrap();
    let mut expected = pattern(3 * 4096);
    expected[4106..4110].fill(9);
    assert_eq!(buf, expected);
    assert_eq!(base.contents(), pattern(3 * 4096));
    assert!(ov.read_at(3 * 4096 - 1, &mut [0; 2]).is_err());
}

#[test]
fn missing_and_unreadable_images_are_clear_errors() {
    let dir = Scratch::new();
    let missing = dir.0.join("nope.img");
    let err = open(&missing, OpenOptions::default()).err().unwrap();
    assert!(matches!(err, DiskError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope.img"));
    let err = open(&dir.0, OpenOptions::default()).err().unwrap();
    assert!(matches!(err, DiskError::Open { .. }), "{err}");
}

#[test]
fn format_is_detected_from_the_magic() {
    let dir = Scratch::new();
    assert_eq!(
        detect_format(&dir.file("tiny", b"QF")).unwrap(),
        Format::Raw
    );
    assert_eq!(
        detect_format(&dir.file("raw", &[0; 600])).unwrap(),
        Format::Raw
    );
    let q = dir.0.join("q.qcow2");
    Qcow2File::create(&q, 1 << 20).unwrap();
    assert_eq!(detect_format(&q).unwrap(), Format::Qcow2);
}

#[test]
fn qcow2_round_trip_through_imago() {
    let dir = Scratch::new();
    let path = dir.0.join("disk.qcow2");
    Qcow2File::create(&path, 4 << 20).unwrap();
    let mut disk = open(&path, OpenOptions::default()).unwrap();
    assert_eq!(disk.len(), 4 << 20);
    let mut buf = vec![0xffu8; 1024];
    disk.read_at(0, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 0),
        "unallocated clusters read as zero"
    );
    let data = pattern(70_000);
    disk.write_at(65_000, &data).unwrap();
    disk.flush().unwrap();
    drop(disk);
    let mut disk = open(&path, OpenOptions::default()).unwrap();
    let mut back = vec![0u8; 70_000];
    disk.read_at(65_000, &mut back).unwrap();
    assert_eq!(back, data);
    assert!(disk.read_at((4 << 20) - 1, &mut [0; 2]).is_err());
}

#[test]
fn qcow2_snapshot_and_read_only_leave_the_image_alone() {
    let dir = Scratch::new();
    let path = dir.0.join("disk.qcow2");
    Qcow2File::create(&path, 1 << 20).unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut snap = open(
        &path,
        OpenOptions {
            snapshot: true,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    snap.write_at(512, b"guest").unwrap();
    let mut buf = [0u8; 5];
    snap.read_at(512, &mut buf).unwrap();
    assert_eq!(&buf, b"guest");
    drop(snap);
    let ro_opts = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    let mut ro = open(&path, ro_opts).unwrap();
    assert!(matches!(ro.write_at(0, b"x"), Err(DiskError::ReadOnly)));
    ro.read_at(512, &mut buf).unwrap();
    assert_eq!(buf, [0; 5]);
    drop(ro);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A valid image, then the same with damaged header fields and truncations: every open is an
/// error or a working image, never a panic.
#[test]
fn malformed_qcow2_is_an_error_not_a_panic() {
    let dir = Scratch::new();
    let good = dir.0.join("good.qcow2");
    Qcow2File::create(&good, 1 << 20).unwrap();
    let image = std::fs::read(&good).unwrap();
    let damaged = |name: &str, bytes: &[u8]| dir.file(name, bytes);
    let mut cases = vec![
        ("magic-only", QCOW2_MAGIC.to_vec()),
        ("short-header", image[..40].to_vec()),
        ("no-tables", image[..512].to_vec()),
    ];
    // Version, backing offset, cluster bits, size, L1 size and offset, refcount offset.
    for (at, value) in [
        (4usize, 9u8),
        (8, 0xff),
        (20, 0x40),
        (20, 2),
        (24, 0xff),
        (36, 0xff),
        (40, 0xff),
        (48, 0xff),
        (56, 0xff),
    ] {
        let mut bytes = image.clone();
        bytes[at] = value;
        cases.push(("field", bytes));
    }
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let path = damaged(&format!("bad{i}.qcow2"), bytes);
        match open(&path, OpenOptions::default()) {
            Err(e) => assert!(matches!(e, DiskError::Malformed { .. }), "{what} #{i}: {e}"),
            Ok(mut disk) => {
                // Opened despite the damage: reads must fail cleanly or succeed.
                let mut buf = [0u8; 512];
                let _ = disk.read_at(0, &mut buf);
            }
        }
    }
}

#[test]
fn cdrom_options_give_2048_byte_blocks() {
    let dir = Scratch::new();
    let path = dir.file("cd.iso", &pattern(2048 * 5));
    let disk = open(&path, OpenOptions::cdrom()).unwrap();
    assert!(disk.read_only());
    assert_eq!(disk.sector_size(), CD_SECTOR_SIZE);
    assert_eq!(disk.sectors(), 5);
}

#[test]
fn mem_disk_clones_share_bytes_and_count_flushes() {
    let disk = MemDisk::new(vec![0; 1024]);
    let mut dev: Box<dyn BlockBackend> = Box::new(disk.clone());
    dev.write_at(10, &[5]).unwrap();
    dev.flush().unwrap();
    assert_eq!(disk.contents()[10], 5);
    assert_eq!(disk.flushes(), 1);
    let mut ro = disk.clone().read_only();
    assert!(ro.write_at(0, &[1]).is_err());
}
