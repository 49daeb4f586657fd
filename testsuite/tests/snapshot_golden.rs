//! The committed golden snapshot still resumes: a change that breaks old snapshot files fails
//! here. The file is the demo ROM on a 1 MiB machine, saved after 6000 instructions (between
//! its protected-mode banner and its sieve), gzip-compressed. To write it again on purpose:
//! `cargo test -p nestor-machine --lib write_golden_snapshot -- --ignored`.

use nestor_device::testing::BufferBackend;
use nestor_machine::snapshot::{self, ResumeOptions};
use nestor_machine::MachineExit;
use std::io::Read;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/demo-1mib.elf.gz");

/// What the demo prints after the snapshot point.
const REST: &str = "sieve: 168 primes below 1000, sum 76127 (0x0001295F), largest 997\r\n\
crc32(\"123456789\") = 0xCBF43926\r\n\
bye\r\n";

fn unpack() -> std::path::PathBuf {
    let mut raw = Vec::new();
    let file = std::fs::File::open(GOLDEN).expect("golden snapshot");
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut raw)
        .expect("gunzip");
    let path = std::env::temp_dir().join(format!("nestor-golden-{}.elf", std::process::id()));
    std::fs::write(&path, raw).expect("write");
    path
}

#[test]
fn golden_snapshot_resumes_and_finishes_the_demo() {
    let path = unpack();
    let config = snapshot::read_config(&path).expect("config");
    assert_eq!(
        (config.ram_mib, config.cpu_model.as_str()),
        (1, "pentium-pro")
    );
    assert!(config.deterministic);
    let serial = BufferBackend::output_only();
    let mut opts = ResumeOptions::default();
    opts.serial[0] = Some(Box::new(serial.clone()));
    let mut machine = snapshot::resume(&path, opts).expect("resume the golden snapshot");
    assert_eq!(machine.spent(), 6000);
    let exit = machine.run(Some(1_000_000)).expect("run");
    assert_eq!(exit, MachineExit::PowerOff);
    assert_eq!(serial.output_string(), REST);
    std::fs::remove_file(&path).expect("cleanup");
}
