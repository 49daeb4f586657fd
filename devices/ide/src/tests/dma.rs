use super::*;

const PRD_TABLE: u32 = 0x8000;

/// Write a PRD table: (buffer address, byte count) entries, the last with end-of-table.
fn prd_table(rig: &mut Rig, at: u32, entries: &[(u32, u32)]) {
    for (i, &(addr, len)) in entries.iter().enumerate() {
        let eot = if i + 1 == entries.len() {
            0x8000_0000
        } else {
            0
        };
        let mut e = addr.to_le_bytes().to_vec();
        e.extend_from_slice(&((len & 0xffff) | eot).to_le_bytes());
        let base = at as usize + 8 * i;
        rig.ctx.ram[base..base + 8].copy_from_slice(&e);
    }
}

/// Point the primary channel's engine at a table and start it in a direction.
fn start(rig: &mut Rig, table: u32, to_memory: bool) {
    rig.outl(BM_BASE + 4, table);
    let dir = if to_memory { bm::WRITE_MEMORY } else { 0 };
    rig.out(BM_BASE, dir | bm::START);
}

fn bm_status(rig: &mut Rig) -> u8 {
    rig.inb(BM_BASE + 2)
}

#[test]
fn read_dma_scatters_sectors_through_the_prd_table() {
    let mut rig = Rig::with_disk();
    prd_table(&mut rig, PRD_TABLE, &[(0x1_0000, 1024), (0x2_0000, 512)]);
    rig.lba28(0xc8, 8, 3);
    assert!(!rig.ctx.irq(14), "waits for the engine");
    start(&mut rig, PRD_TABLE, true);
    assert!(rig.ctx.irq(14));
    assert_eq!(
        bm_status(&mut rig) & 0x07,
        bm::INTERRUPT,
        "done, not active"
    );
    assert_eq!(rig.ack(), 0x50);
    let image = pattern(64, 512);
    assert_eq!(rig.ctx.ram[0x1_0000..0x1_0400], image[8 * 512..10 * 512]);
    assert_eq!(rig.ctx.ram[0x2_0000..0x2_0200], image[10 * 512..11 * 512]);
    rig.out(BM_BASE + 2, bm::INTERRUPT); // write 1 to clear
    rig.out(BM_BASE, bm::WRITE_MEMORY);
    assert_eq!(bm_status(&mut rig) & 0x07, 0);
}

#[test]
fn engine_started_first_then_command_and_larger_table() {
    let mut rig = Rig::with_disk();
    prd_table(&mut rig, PRD_TABLE, &[(0x3_0000, 0)]); // 0 = 64 KiB
    start(&mut rig, PRD_TABLE, true);
    assert_eq!(bm_status(&mut rig) & 0x01, 0x01, "active, waiting");
    rig.lba48(0x25, 0, 2);
    assert!(rig.ctx.irq(14));
    // The table is larger than the transfer: the PIIX keeps ACTIVE set.
    assert_eq!(bm_status(&mut rig) & 0x07, bm::INTERRUPT | bm::ACTIVE);
    assert_eq!(rig.ctx.ram[0x3_0000..0x3_0400], pattern(64, 512)[..1024]);
}

#[test]
fn write_dma_gathers_memory_into_the_disk() {
    let mut rig = Rig::with_disk();
    rig.ctx.ram[0x4_0000..0x4_0200].fill(0x5a);
    rig.ctx.ram[0x5_0000..0x5_0200].fill(0xa5);
    prd_table(&mut rig, PRD_TABLE, &[(0x4_0000, 512), (0x5_0000, 512)]);
    rig.lba28(0xca, 30, 2);
    start(&mut rig, PRD_TABLE, false);
    assert_eq!(rig.ack(), 0x50);
    let image = rig.disk.contents();
    assert_eq!(image[30 * 512..31 * 512], [0x5a; 512]);
    assert_eq!(image[31 * 512..32 * 512], [0xa5; 512]);
}

#[test]
fn prd_outside_ram_sets_the_error_bit_without_panicking() {
    let mut rig = Rig::with_disk();
    // A buffer beyond the end of RAM.
    prd_table(&mut rig, PRD_TABLE, &[(0xfff0_0000, 512)]);
    rig.lba28(0xc8, 0, 1);
    start(&mut rig, PRD_TABLE, true);
    assert!(rig.ctx.irq(14), "the failure interrupts");
    assert_eq!(bm_status(&mut rig) & 0x07, bm::INTERRUPT | bm::ERROR);
    assert_eq!(rig.ack(), 0x51);
    assert_eq!(rig.inb(0x1f1), error::ABRT);
    rig.out(BM_BASE + 2, bm::INTERRUPT | bm::ERROR);
    rig.out(BM_BASE, 0);
    // The table itself outside RAM.
    rig.lba28(0xc8, 0, 1);
    start(&mut rig, 0xffff_fff0, true);
    assert_eq!(bm_status(&mut rig) & 0x07, bm::INTERRUPT | bm::ERROR);
    rig.out(BM_BASE + 2, 0x06);
    rig.out(BM_BASE, 0);
    // A table smaller than the transfer.
    prd_table(&mut rig, PRD_TABLE, &[(0x1_0000, 512)]);
    rig.lba28(0xc8, 0, 4);
    start(&mut rig, PRD_TABLE, true);
    assert_eq!(bm_status(&mut rig) & 0x07, bm::INTERRUPT | bm::ERROR);
    assert_eq!(rig.ack(), 0x51);
}

#[test]
fn dma_waits_for_bus_mastering_and_registers_read_back() {
    let mut rig = Rig::with_disk();
    let mut ctx = FakeContext::new();
    rig.ide
        .pci()
        .unwrap()
        .config_write(0x04, 2, 0x0001, &mut ctx); // I/O only
    prd_table(&mut rig, PRD_TABLE, &[(0x1_0000, 512)]);
    rig.lba28(0xc8, 0, 1);
    start(&mut rig, PRD_TABLE, true);
    assert!(!rig.ctx.irq(14), "no bus mastering: nothing moves");
    assert_eq!(rig.ide.io_read(BM_BASE + 4, 4, &mut rig.ctx), PRD_TABLE);
    rig.out(BM_BASE + 2, 0x60);
    assert_eq!(
        bm_status(&mut rig) & 0x60,
        0x60,
        "drive capable bits are kept"
    );
    assert_eq!(rig.inb(BM_BASE + 8), 0, "secondary channel idle");
}
