use super::*;
use nestor_device::testing::FakeContext;

/// Where tests put the DMA descriptor and buffers.
const DESC: u64 = 0x1000;
const BUF: u64 = 0x2000;

fn select(fw: &mut FwCfg, ctx: &mut FakeContext, k: u16) {
    fw.io_write(SELECTOR_PORT, 2, u32::from(k), ctx);
}

fn read_bytes(fw: &mut FwCfg, ctx: &mut FakeContext, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| fw.io_read(DATA_PORT, 1, ctx) as u8)
        .collect()
}

fn read_item(fw: &mut FwCfg, ctx: &mut FakeContext, k: u16, n: usize) -> Vec<u8> {
    select(fw, ctx, k);
    read_bytes(fw, ctx, n)
}

/// Write a descriptor at DESC and start the transfer as SeaBIOS does (two big-endian outl).
fn dma(fw: &mut FwCfg, ctx: &mut FakeContext, control: u32, length: u32, address: u64) -> u32 {
    dma_at(fw, ctx, DESC, control, length, address)
}

fn dma_at(
    fw: &mut FwCfg,
    ctx: &mut FakeContext,
    desc: u64,
    control: u32,
    length: u32,
    address: u64,
) -> u32 {
    let mut raw = control.to_be_bytes().to_vec();
    raw.extend_from_slice(&length.to_be_bytes());
    raw.extend_from_slice(&address.to_be_bytes());
    let _ = ctx.dma_write(desc, &raw);
    fw.io_write(0x514, 4, ((desc >> 32) as u32).swap_bytes(), ctx);
    fw.io_write(0x518, 4, (desc as u32).swap_bytes(), ctx);
    let mut status = [0u8; 4];
    let _ = ctx.dma_read(desc, &mut status);
    u32::from_be_bytes(status)
}

fn ram(ctx: &FakeContext, at: u64, n: usize) -> Vec<u8> {
    ctx.ram[at as usize..at as usize + n].to_vec()
}

#[test]
fn signature_and_id_through_the_ports() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::new();
    assert_eq!(read_item(&mut fw, &mut ctx, key::SIGNATURE, 6), b"QEMU\0\0");
    assert_eq!(
        read_item(&mut fw, &mut ctx, key::ID, 4),
        [3, 0, 0, 0],
        "traditional + DMA"
    );
    select(&mut fw, &mut ctx, key::SIGNATURE);
    assert_eq!(
        fw.io_read(SELECTOR_PORT, 2, &mut ctx),
        0x5145,
        "'Q' then 'E'"
    );
    let dma_sig: Vec<u8> = (0..8)
        .map(|i| fw.io_read(0x514 + i, 1, &mut ctx) as u8)
        .collect();
    assert_eq!(dma_sig, b"QEMU CFG");
    assert_eq!(fw.io_read(0x514, 4, &mut ctx), u32::from_le_bytes(*b"QEMU"));
    assert_eq!(
        fw.ports(),
        vec![PortRange::new(0x510, 2), PortRange::new(0x514, 8)]
    );
}

#[test]
fn numbered_items_are_little_endian_and_reads_past_the_end_give_zero() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::new();
    fw.set_u64(key::RAM_SIZE, 0x1_2000_0000).unwrap();
    fw.set_u16(key::NB_CPUS, 2).unwrap();
    fw.set_u16(key::MAX_CPUS, 4).unwrap();
    fw.set_item(key::UUID, (1..=16).collect()).unwrap();
    assert_eq!(
        read_item(&mut fw, &mut ctx, key::RAM_SIZE, 10),
        [0, 0, 0, 0x20, 1, 0, 0, 0, 0, 0]
    );
    assert_eq!(read_item(&mut fw, &mut ctx, key::NB_CPUS, 3), [2, 0, 0]);
    assert_eq!(read_item(&mut fw, &mut ctx, key::MAX_CPUS, 2), [4, 0]);
    assert_eq!(
        read_item(&mut fw, &mut ctx, key::UUID, 16),
        (1..=16).collect::<Vec<u8>>()
    );
    assert_eq!(
        read_item(&mut fw, &mut ctx, 0x1234, 2),
        [0, 0],
        "unknown key"
    );
    assert_eq!(
        read_item(&mut fw, &mut ctx, key::NB_CPUS | key::WRITE_CHANNEL, 1),
        [2],
        "the write-channel bit does not change the item"
    );
    fw.io_write(DATA_PORT, 1, 0x55, &mut ctx);
    fw.io_write(SELECTOR_PORT, 1, u32::from(key::SIGNATURE), &mut ctx);
    assert_eq!(
        read_bytes(&mut fw, &mut ctx, 1),
        [0],
        "byte writes select nothing"
    );
}

#[test]
fn reserved_keys_and_bad_files_are_refused() {
    let mut fw = FwCfg::new();
    for k in [key::FILE_DIR, key::FILE_FIRST, 0x3fff, 0x4001] {
        assert_eq!(fw.set_u16(k, 1), Err(FwCfgError::ReservedKey(k)));
    }
    assert!(
        fw.set_item(key::E820_TABLE, vec![0; 20]).is_ok(),
        "arch-local keys are fine"
    );
    let long = "x".repeat(56);
    assert_eq!(
        fw.add_file(&long, vec![]),
        Err(FwCfgError::BadName(long.clone()))
    );
    assert!(fw.add_file("", vec![]).is_err());
    assert!(fw.add_file(&long[..55], vec![]).is_ok());
}

#[test]
fn file_directory_lists_files_sorted_by_name() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::new();
    fw.add_file("etc/e820", vec![1; 40]).unwrap();
    fw.add_file("bootorder", b"/rom@genroms/linuxboot_dma.bin\n".to_vec())
        .unwrap();
    fw.add_file("etc/acpi/tables", vec![7; 300]).unwrap();
    fw.add_file("etc/e820", vec![2; 20]).unwrap(); // replaced, not added
    let dir = read_item(&mut fw, &mut ctx, key::FILE_DIR, 4 + 3 * 64);
    assert_eq!(dir[..4], [0, 0, 0, 3]);
    let entry = |i: usize| &dir[4 + 64 * i..4 + 64 * (i + 1)];
    let name = |e: &[u8]| {
        String::from_utf8(e[8..].iter().copied().take_while(|&b| b != 0).collect()).unwrap()
    };
    assert_eq!(name(entry(0)), "bootorder");
    assert_eq!(name(entry(1)), "etc/acpi/tables");
    assert_eq!(name(entry(2)), "etc/e820");
    assert_eq!(
        entry(1)[..8],
        [0, 0, 1, 0x2c, 0, 0x21, 0, 0],
        "size 300, key 0x21"
    );
    assert_eq!(entry(2)[..8], [0, 0, 0, 20, 0, 0x22, 0, 0]);
    assert_eq!(fw.file_key("etc/e820"), Some(0x22));
    assert_eq!(
        read_item(&mut fw, &mut ctx, 0x22, 21),
        [vec![2; 20], vec![0]].concat()
    );
    assert_eq!(read_item(&mut fw, &mut ctx, 0x23, 1), [0], "no fourth file");
    assert_eq!(fw.file("bootorder").map(<[u8]>::len), Some(31));
}

#[test]
fn dma_select_and_read_with_zero_fill_past_the_end() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::with_ram(0x10000);
    fw.add_file("etc/table-loader", (0..100).collect()).unwrap();
    ctx.ram[BUF as usize..BUF as usize + 0x200].fill(0xaa);
    let ctl = (0x20 << 16) | dma_control::SELECT | dma_control::READ;
    assert_eq!(dma(&mut fw, &mut ctx, ctl, 60, BUF), 0);
    assert_eq!(ram(&ctx, BUF, 60), (0..60).collect::<Vec<u8>>());
    assert_eq!(ram(&ctx, BUF + 60, 1), [0xaa]);
    assert_eq!(dma(&mut fw, &mut ctx, dma_control::SKIP, 20, 0), 0);
    assert_eq!(dma(&mut fw, &mut ctx, dma_control::READ, 30, BUF), 0);
    assert_eq!(
        ram(&ctx, BUF, 30),
        [(80..100).collect::<Vec<u8>>(), vec![0; 10]].concat()
    );
    assert_eq!(
        read_bytes(&mut fw, &mut ctx, 1),
        [0],
        "the port reader continues at the end"
    );
    assert_eq!(
        dma(&mut fw, &mut ctx, (1 << 16) | dma_control::SELECT, 100, BUF),
        0
    );
    assert_eq!(
        read_bytes(&mut fw, &mut ctx, 1),
        [3],
        "select alone rewinds, transfers nothing"
    );
}

#[test]
fn dma_errors_set_the_error_bit() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::with_ram(0x10000);
    fw.add_file("big", vec![9; 0x3000]).unwrap();
    let ctl = (0x20 << 16) | dma_control::SELECT | dma_control::READ;
    assert_eq!(
        dma(&mut fw, &mut ctx, ctl, 0x3000, 0xf000),
        dma_control::ERROR,
        "runs out of RAM"
    );
    assert_eq!(
        dma(&mut fw, &mut ctx, ctl, 16, u64::MAX - 4),
        dma_control::ERROR
    );
    assert_eq!(
        dma(&mut fw, &mut ctx, dma_control::WRITE, 4, BUF),
        dma_control::ERROR,
        "read-only"
    );
    select(&mut fw, &mut ctx, 0x30);
    assert_eq!(
        dma(&mut fw, &mut ctx, dma_control::READ, 0x10_0000, 0x8000),
        dma_control::ERROR,
        "zero fill beyond RAM"
    );
    // A descriptor outside RAM: nothing to report to, and nothing panics.
    assert_eq!(dma_at(&mut fw, &mut ctx, 0xffff_fff0_0000, ctl, 4, BUF), 0);
    assert_eq!(dma_at(&mut fw, &mut ctx, 0xfffe, ctl, 4, BUF), 0);
    assert_eq!(fw.state().dma_address, 0);
}

#[test]
fn dma_writes_reach_writable_files_only_whole() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::with_ram(0x10000);
    fw.add_writable_file("etc/vmgenid_addr", vec![0; 8])
        .unwrap();
    let k = u32::from(fw.file_key("etc/vmgenid_addr").unwrap());
    ctx.ram[BUF as usize..BUF as usize + 8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let ctl = (k << 16) | dma_control::SELECT | dma_control::WRITE;
    assert_eq!(
        dma(&mut fw, &mut ctx, ctl, 9, BUF),
        dma_control::ERROR,
        "past the end"
    );
    assert_eq!(fw.file("etc/vmgenid_addr"), Some(&[0; 8][..]));
    assert_eq!(dma(&mut fw, &mut ctx, ctl, 8, BUF), 0);
    assert_eq!(
        fw.file("etc/vmgenid_addr"),
        Some(&[1, 2, 3, 4, 5, 6, 7, 8][..])
    );
    assert_eq!(
        fw.state().writable_files["etc/vmgenid_addr"],
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
}

#[test]
fn high_half_write_restarts_the_address() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::with_ram(0x10000);
    fw.io_write(0x518, 2, 0x1234, &mut ctx);
    fw.io_write(0x514, 4, 0, &mut ctx);
    assert_eq!(fw.state().dma_address, 0, "high half clears the low half");
    for (i, b) in DESC.to_be_bytes().iter().enumerate() {
        fw.io_write(0x514 + i as u16, 1, u32::from(*b), &mut ctx);
    }
    assert_eq!(
        fw.state().dma_address,
        0,
        "byte writes: the last one starts the transfer"
    );
    let mut status = [0xffu8; 4];
    ctx.dma_read(DESC, &mut status).unwrap();
    assert_eq!(status, [0; 4], "an all-zero descriptor succeeds");
}

#[test]
fn state_round_trips() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::new();
    fw.add_writable_file("w", vec![5; 3]).unwrap();
    select(&mut fw, &mut ctx, key::SIGNATURE);
    read_bytes(&mut fw, &mut ctx, 2);
    fw.io_write(0x514, 4, 0x1000_0000, &mut ctx);
    let mut copy = FwCfg::new();
    copy.add_writable_file("w", vec![0; 3]).unwrap();
    copy.restore(&fw.save().unwrap()).unwrap();
    assert_eq!(copy.state(), fw.state());
    assert_eq!(copy.file("w"), Some(&[5; 3][..]));
    assert!(copy.restore(&[1, 2, 3]).is_err());
}

#[test]
fn restored_device_carries_on_mid_item() {
    let build = || {
        let mut fw = FwCfg::new();
        fw.add_file(
            "genroms/linuxboot_dma.bin",
            (0..=255).cycle().take(1000).collect(),
        )
        .unwrap();
        fw.set_linux_boot(LinuxBoot {
            cmdline: b"console=ttyS0".to_vec(),
            cmdline_addr: 0x2_0000,
            kernel: vec![0x90; 64],
            ..LinuxBoot::default()
        })
        .unwrap();
        fw
    };
    let mut a = build();
    let mut ctx_a = FakeContext::with_ram(0x10000);
    read_item(&mut a, &mut ctx_a, 0x20, 300);
    let mut b = build();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = ctx_a.clone();
    assert_eq!(
        read_bytes(&mut a, &mut ctx_a, 800),
        read_bytes(&mut b, &mut ctx_b, 800)
    );
    for (fw, ctx) in [(&mut a, &mut ctx_a), (&mut b, &mut ctx_b)] {
        let ctl = (u32::from(key::CMDLINE_DATA) << 16) | dma_control::SELECT | dma_control::READ;
        assert_eq!(dma(fw, ctx, ctl, 14, BUF), 0);
        assert_eq!(read_item(fw, ctx, key::CMDLINE_SIZE, 4), [14, 0, 0, 0]);
        assert_eq!(read_item(fw, ctx, key::CMDLINE_ADDR, 4), [0, 0, 2, 0]);
        assert_eq!(read_item(fw, ctx, key::KERNEL_SIZE, 4), [64, 0, 0, 0]);
    }
    assert_eq!(ram(&ctx_a, BUF, 14), b"console=ttyS0\0");
    assert_eq!(ctx_a.ram, ctx_b.ram);
    assert_eq!(a.state(), b.state());
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut fw = FwCfg::new();
    fw.add_file("a", vec![1; 5000]).unwrap();
    fw.add_writable_file("b", vec![2; 16]).unwrap();
    let mut ctx = FakeContext::with_ram(0x4000);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [1, 2, 4][(x % 3) as usize];
        let port = 0x50f + (x >> 8) as u16 % 14;
        match (x >> 20) & 3 {
            0 => {
                // A random descriptor in RAM, with random contents.
                let desc = (x >> 24) % 0x4010;
                let junk = (x >> 3).to_le_bytes();
                let _ = ctx.dma_write(desc, &junk);
                let _ = ctx.dma_write(desc + 4, &[0, 0, (x >> 50) as u8 & 0x3f, x as u8]);
                fw.io_write(0x514, 4, 0, &mut ctx);
                fw.io_write(0x518, 4, (desc as u32).swap_bytes(), &mut ctx);
            }
            1 => fw.io_write(port, size, (x >> 32) as u32, &mut ctx),
            2 => fw.io_write(SELECTOR_PORT, 2, (x >> 40) as u32 & 0xc03f, &mut ctx),
            _ => {
                fw.io_read(port, size, &mut ctx);
            }
        }
    }
    assert_eq!(read_item(&mut fw, &mut ctx, key::SIGNATURE, 4), b"QEMU");
}

#[test]
fn plugin_takes_no_options() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "fw_cfg");
    config.options.insert("dma".into(), "off".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}

#[test]
fn reset_selects_the_signature() {
    let mut fw = FwCfg::new();
    let mut ctx = FakeContext::new();
    select(&mut fw, &mut ctx, key::ID);
    fw.reset();
    assert_eq!(read_bytes(&mut fw, &mut ctx, 4), b"QEMU");
}
