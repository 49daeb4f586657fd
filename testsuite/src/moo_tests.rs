use super::*;
use crate::flags::{flags_mask, Form};

fn suite_file(form: &str) -> PathBuf {
    crate::sst80286_real_mode_dir().join(format!("{form}.MOO.gz"))
}

fn raw(form: &str) -> Vec<u8> {
    let gz = std::fs::read(suite_file(form)).expect("test data in ../shared/testdata");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

#[test]
fn parses_add_rm8_r8() {
    let file = MooFile::from_path(suite_file("00")).expect("parse 00.MOO.gz");
    assert_eq!(file.cpu_name, "C286");
    assert_eq!(file.version, (1, 0));
    assert_eq!(file.declared_tests, 1000);
    assert_eq!(file.tests.len(), 1000);
    let meta = file.meta.as_ref().expect("META chunk");
    assert_eq!(
        (
            meta.opcode,
            meta.mnemonic.as_str(),
            meta.test_count,
            meta.cpu_mode
        ),
        (0, "add", 1000, 0)
    );
    assert!(file.reg_masks.is_none());

    // Test 0 is the example of UPSTREAM-README.md.
    let t = &file.tests[0];
    assert_eq!(t.index, 0);
    assert_eq!(t.name, "add [bx+0Eh],bl");
    assert_eq!(t.bytes, [0x00, 0x5F, 0x0E, 0xF4]);
    assert!(t.init.regs.is_complete());
    assert_eq!(t.init.regs.get(Reg16::Ax), Some(715));
    assert_eq!(t.init.regs.get(Reg16::Cs), Some(65535));
    assert_eq!(t.init.regs.get(Reg16::Ip), Some(38072));
    assert_eq!(t.init.regs.get(Reg16::Flags), Some(6291));
    assert_eq!(t.init.ram.len(), 11);
    assert_eq!(t.init.ram[0], (1_086_632, 0));
    assert_eq!(t.init.ram[10], (1_075_233, 222));
    let changed: Vec<_> = t.fina.regs.iter().collect();
    assert_eq!(changed, [(Reg16::Ip, 38076), (Reg16::Flags, 19)]);
    assert_eq!(t.fina.ram, [(1_075_233, 1)]);
    assert_eq!(t.exception, None);
    assert_eq!(t.hash_hex(), "626be5084b331080eb08256c12a62d24afdf2a03");

    for (i, t) in file.tests.iter().enumerate() {
        assert_eq!(t.index as usize, i);
        assert!(
            t.init.regs.is_complete(),
            "test {i}: initial registers incomplete"
        );
        assert_eq!(t.bytes.last(), Some(&0xF4), "test {i}: ends with HLT");
    }
}

#[test]
fn parses_div_rm8_with_exceptions() {
    let file = MooFile::from_path(suite_file("F6.6")).expect("parse F6.6.MOO.gz");
    assert_eq!(file.tests.len(), 1000);
    assert_eq!(
        file.meta.as_ref().map(|m| (m.opcode, m.mnemonic.as_str())),
        Some((0xF6, "div"))
    );
    let t = &file.tests[0];
    assert_eq!(t.name, "div byte [si+3D3Bh]");
    assert_eq!(
        t.exception,
        Some(MooException {
            number: 0,
            flag_addr: 0x000C_5328
        })
    );
    let t = &file.tests[1];
    assert_eq!(
        (t.name.as_str(), &t.bytes[..]),
        ("div cl", &[0xF6, 0xF1, 0xF4][..])
    );
    assert_eq!(t.exception, None);

    let exceptions = file.tests.iter().filter(|t| t.exception.is_some()).count();
    assert!(
        exceptions > 0 && exceptions < 1000,
        "{exceptions} divide errors"
    );
    assert!(file
        .tests
        .iter()
        .filter_map(|t| t.exception)
        .all(|e| e.number == 0));
    let hashes: HashSet<String> = file.tests.iter().map(MooTest::hash_hex).collect();
    assert_eq!(hashes.len(), 1000, "hashes are unique");
}

#[test]
fn uncompressed_and_compressed_parse_alike() {
    let data = raw("F6.6");
    let a = MooFile::parse(&data).expect("raw");
    let b = MooFile::from_bytes(&std::fs::read(suite_file("F6.6")).expect("read")).expect("gz");
    assert_eq!(a.tests.len(), b.tests.len());
    assert_eq!(a.tests[999].hash, b.tests[999].hash);
    assert_eq!(a.tests[999].fina, b.tests[999].fina);
}

#[test]
fn truncated_input_is_an_error() {
    let data = raw("00");
    let cuts = (0..600)
        .chain((600..data.len()).step_by(997))
        .chain([data.len() - 1]);
    for cut in cuts {
        assert!(
            MooFile::parse(&data[..cut]).is_err(),
            "prefix of {cut} bytes parsed"
        );
    }
    let gz = std::fs::read(suite_file("00")).expect("read");
    assert!(MooFile::from_bytes(&gz[..gz.len() / 2]).is_err());
}

#[test]
fn malformed_input_is_an_error() {
    assert!(matches!(MooFile::parse(b""), Err(MooError::NotMoo(_))));
    assert!(matches!(
        MooFile::parse(b"MOOF\0\0\0\0"),
        Err(MooError::NotMoo(_))
    ));
    assert!(matches!(
        MooFile::parse(b"MOO \xff\xff\xff\xff"),
        Err(MooError::Truncated { .. })
    ));
    assert!(MooFile::parse(&[0xAB; 64]).is_err());

    let mut data = raw("00");
    // A huge RAM entry count in the first test's INIT.
    let at = find(&data, b"RAM ").expect("RAM chunk") + 8;
    data[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        MooFile::parse(&data),
        Err(MooError::Truncated { .. })
    ));

    // A test without HASH: rename the chunk id to an unknown one.
    let mut data = raw("00");
    let at = find(&data, b"HASH").expect("HASH chunk");
    data[at..at + 4].copy_from_slice(b"XXXX");
    assert!(matches!(
        MooFile::parse(&data),
        Err(MooError::MissingChunk {
            index: 0,
            chunk: "HASH"
        })
    ));

    // Header test count that disagrees with the tests present.
    let mut data = raw("00");
    data[12..16].copy_from_slice(&999u32.to_le_bytes());
    assert!(matches!(
        MooFile::parse(&data),
        Err(MooError::TestCount {
            declared: 999,
            found: 1000
        })
    ));
}

#[test]
fn unknown_chunks_are_skipped() {
    let data = raw("00");
    // Insert an unknown top-level chunk after the header.
    let header_end = 8 + u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let mut with_extra = data[..header_end].to_vec();
    with_extra.extend_from_slice(b"ZZZZ\x03\0\0\0abc");
    with_extra.extend_from_slice(&data[header_end..]);
    let file = MooFile::parse(&with_extra).expect("parse with an unknown chunk");
    assert_eq!(file.tests.len(), 1000);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn revocation_list() {
    let path = crate::sst80286_dir().join("revocation_list.txt");
    let listed = load_revocation_list(&path).expect("read revocation list");
    assert!(listed.is_empty(), "the shipped list holds only comments");

    let text = "# bad tests\n\n626BE5084B331080EB08256C12A62D24AFDF2A03  \n  # indented comment\nabc # trailing\n";
    let set = parse_revocation_list(text);
    assert_eq!(set.len(), 2);
    assert!(set.contains("626be5084b331080eb08256c12a62d24afdf2a03"));
    assert!(set.contains("abc"));
    let file = MooFile::from_path(suite_file("00")).expect("parse");
    assert!(file.tests[0].is_revoked(&set));
    assert!(!file.tests[1].is_revoked(&set));
}

#[test]
fn lists_the_suite() {
    let files = list_test_files(crate::sst80286_real_mode_dir()).expect("list");
    assert_eq!(files.len(), 325);
    assert_eq!(files[0].0, "00");
    assert_eq!(files.last().map(|f| f.0.as_str()), Some("FF.6"));
    assert!(
        files.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted, no duplicates"
    );
    assert!(files
        .iter()
        .any(|(name, path)| name == "F6.6" && path.ends_with("F6.6.MOO.gz")));
    for (name, _) in &files {
        assert!(name.parse::<Form>().is_ok(), "{name}");
    }
    assert!(list_test_files("/nonexistent/dir").is_err());
}

#[test]
fn form_names_and_flag_masks() {
    assert_eq!(
        "F6.6".parse(),
        Ok(Form {
            opcode: 0xF6,
            reg: Some(6)
        })
    );
    assert_eq!(
        "00".parse(),
        Ok(Form {
            opcode: 0,
            reg: None
        })
    );
    assert_eq!(
        "0F04".parse(),
        Ok(Form {
            opcode: 0x0F04,
            reg: None
        })
    );
    for bad in [
        "", "F", "F6.", "F6.8", "F6.06", "G0", "123", "F6.6.1", "F6.+1",
    ] {
        assert!(bad.parse::<Form>().is_err(), "{bad:?}");
    }
    assert_eq!(
        Form {
            opcode: 0xF6,
            reg: Some(6)
        }
        .to_string(),
        "F6.6"
    );
    // The values of SingleStepTests 8088 v2/metadata.json "flags-mask" for shared opcodes.
    let expected = [
        ("08", 65519),
        ("27", 63487),
        ("37", 63291),
        ("80.6", 65519),
        ("80.0", 0xFFFF),
    ];
    let more = [
        ("D0.4", 65519),
        ("D2.0", 63487),
        ("D3.7", 63470),
        ("D4", 63470),
        ("F6.4", 65323),
        ("F7.7", 63274),
    ];
    for (name, mask) in expected.into_iter().chain(more) {
        let form: Form = name.parse().expect("form");
        assert_eq!(flags_mask(form), mask, "{name}");
    }
}

/// Every file of the suite parses (about 6 s in a debug build).
#[test]
fn all_files_parse() {
    for (name, path) in list_test_files(crate::sst80286_real_mode_dir()).expect("list") {
        let file = MooFile::from_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.tests.len(), 1000, "{name}");
        assert!(
            file.tests.iter().all(|t| t.init.regs.is_complete()),
            "{name}"
        );
    }
}
