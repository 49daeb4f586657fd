use super::*;

const H: u64 = 0x7f00_0000_0000;
const ROM_H: u64 = 0x7e00_0000_0000;
const MIB: u64 = 1 << 20;

fn slot(guest: u64, size: u64, host: u64, read_only: bool) -> Slot {
    Slot {
        guest,
        size,
        host,
        read_only,
    }
}

/// The slots `vm::slots` makes for 16 MiB of RAM and a 64 KiB ROM.
fn base() -> Vec<Slot> {
    vec![
        slot(0, 0xa_0000, H, false),
        slot(MIB, 15 * MIB, H + MIB, false),
        slot(0xf_0000, 0x1_0000, ROM_H, true),
        slot(0xffff_0000, 0x1_0000, ROM_H, true),
    ]
}

fn guards(list: &[(u64, Guard)]) -> BTreeMap<u64, Guard> {
    list.iter().copied().collect()
}

#[test]
fn no_guards_leave_the_slots_as_they_are() {
    assert_eq!(protected_slots(&base(), &BTreeMap::new()), base());
}

#[test]
fn guarded_pages_are_split_out_of_their_slots() {
    let g = guards(&[
        (0x5000, Guard::ReadOnly),
        (0x7000, Guard::Unmapped),
        (0x9_f000, Guard::ReadOnly),
        (MIB, Guard::Unmapped),
        (0xa_0000, Guard::Unmapped), // the VGA hole: no slot, nothing to do
    ]);
    let got = protected_slots(&base(), &g);
    let want = vec![
        slot(0, 0x5000, H, false),
        slot(0x5000, 0x1000, H + 0x5000, true),
        slot(0x6000, 0x1000, H + 0x6000, false),
        // 0x7000 is gone
        slot(0x8000, 0x9_7000, H + 0x8000, false),
        slot(0x9_f000, 0x1000, H + 0x9_f000, true),
        // MIB's first page is gone
        slot(MIB + 0x1000, 15 * MIB - 0x1000, H + MIB + 0x1000, false),
        slot(0xf_0000, 0x1_0000, ROM_H, true),
        slot(0xffff_0000, 0x1_0000, ROM_H, true),
    ];
    assert_eq!(got, want);
}

#[test]
fn adjacent_pages_and_rom_pages() {
    let g = guards(&[
        (0x1000, Guard::ReadOnly),
        (0x2000, Guard::ReadOnly),
        (0x3000, Guard::Unmapped),
        (0xf_1000, Guard::ReadOnly), // ROM is read-only already: the slot stays whole
        (0xffff_f000, Guard::Unmapped),
    ]);
    let got = protected_slots(&base(), &g);
    assert_eq!(
        got[..5],
        [
            slot(0, 0x1000, H, false),
            slot(0x1000, 0x1000, H + 0x1000, true),
            slot(0x2000, 0x1000, H + 0x2000, true),
            slot(0x4000, 0x9_c000, H + 0x4000, false),
            slot(MIB, 15 * MIB, H + MIB, false),
        ]
    );
    assert_eq!(
        got[5..],
        [
            slot(0xf_0000, 0x1_0000, ROM_H, true),
            slot(0xffff_0000, 0xf000, ROM_H, true),
        ]
    );
}

#[test]
fn split_slots_cover_exactly_what_the_base_did_minus_unmapped_pages() {
    let g = guards(&[
        (0x0, Guard::Unmapped),
        (0x9_f000, Guard::Unmapped),
        (0x50_0000, Guard::ReadOnly),
        (0xffff_0000, Guard::Unmapped),
    ]);
    let got = protected_slots(&base(), &g);
    let total = |v: &[Slot]| v.iter().map(|s| s.size).sum::<u64>();
    assert_eq!(total(&got), total(&base()) - 3 * PAGE_SIZE);
    for s in &got {
        assert!(s.size > 0 && s.size % PAGE_SIZE == 0, "{s:?}");
        let b = base()
            .into_iter()
            .find(|b| s.guest >= b.guest && s.guest + s.size <= b.guest + b.size)
            .expect("inside a base slot");
        assert_eq!(s.host - b.host, s.guest - b.guest, "host offset follows");
    }
    let mut sorted = got.clone();
    sorted.sort_by_key(|s| s.guest);
    for w in sorted.windows(2) {
        assert!(w[0].guest + w[0].size <= w[1].guest, "no overlap: {w:?}");
    }
}

fn w(start: u64, len: u64, kind: WatchKind) -> Watchpoint {
    Watchpoint { start, len, kind }
}

#[test]
fn watchpoints_translate_page_by_page() {
    // Linear 0x4000_0ffe..0x4000_1002 straddles two pages mapped far apart.
    let map = |lin: u64| match lin & !0xfff {
        0x4000_0000 => Some(0x20_0000 | (lin & 0xfff)),
        0x4000_1000 => Some(0x9000 | (lin & 0xfff)),
        _ => None,
    };
    let pieces = pieces_for(&[w(0x4000_0ffe, 4, WatchKind::Write)], map).unwrap();
    assert_eq!(
        pieces,
        [
            Piece {
                phys: 0x20_0ffe,
                len: 2,
                lin: 0x4000_0ffe,
                kind: WatchKind::Write
            },
            Piece {
                phys: 0x9000,
                len: 2,
                lin: 0x4000_1000,
                kind: WatchKind::Write
            },
        ]
    );
    // An unmapped page is left out; a zero length watches one byte.
    let half = pieces_for(&[w(0x4000_2000, 0, WatchKind::Read)], map).unwrap();
    assert!(half.is_empty());
    let one = pieces_for(&[w(0x4000_0010, 0, WatchKind::Read)], map).unwrap();
    assert_eq!(one[0].len, 1);
}

#[test]
fn huge_or_wrapping_watchpoints_are_refused_not_looped() {
    let id = Some;
    assert_eq!(
        pieces_for(&[w(0, u64::MAX, WatchKind::Write)], id),
        Err(WatchError::TooManyPages)
    );
    let top = pieces_for(&[w(u64::MAX - 1, 8, WatchKind::Write)], id).unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].len, 1, "saturates at the top of the address space");
    let ok = pieces_for(&[w(0x1000, 64 * PAGE_SIZE, WatchKind::Write)], id);
    assert_eq!(ok.map(|p| p.len()), Ok(64));
}

#[test]
fn unmapped_wins_over_read_only_on_a_shared_page() {
    let p = |phys, kind| Piece {
        phys,
        len: 4,
        lin: phys,
        kind,
    };
    let g = guards_for(&[
        p(0x5000, WatchKind::Write),
        p(0x5100, WatchKind::Read),
        p(0x6000, WatchKind::Write),
        p(0x7ffc, WatchKind::Access),
    ]);
    assert_eq!(
        g.into_iter().collect::<Vec<_>>(),
        [
            (0x5000, Guard::Unmapped),
            (0x6000, Guard::ReadOnly),
            (0x7000, Guard::Unmapped)
        ]
    );
}

#[test]
fn hits_follow_kind_and_overlap_and_report_the_linear_address() {
    let watch = PageWatch::new(vec![
        Piece {
            phys: 0x20_0004,
            len: 4,
            lin: 0x4000_0004,
            kind: WatchKind::Write,
        },
        Piece {
            phys: 0x30_0000,
            len: 2,
            lin: 0x5000,
            kind: WatchKind::Read,
        },
    ]);
    let stop = |kind, addr| Some(DebugStop::Watch { kind, addr });
    assert_eq!(
        watch.hit(0x20_0000, 8, true),
        stop(WatchKind::Write, 0x4000_0004),
        "an 8-byte write over the 4 watched bytes"
    );
    assert_eq!(
        watch.hit(0x20_0006, 1, true),
        stop(WatchKind::Write, 0x4000_0006)
    );
    assert_eq!(watch.hit(0x20_0000, 4, true), None, "ends just before");
    assert_eq!(watch.hit(0x20_0008, 4, true), None, "starts just after");
    assert_eq!(
        watch.hit(0x20_0004, 4, false),
        None,
        "a read of a write watch"
    );
    assert_eq!(
        watch.hit(0x30_0001, 1, false),
        stop(WatchKind::Read, 0x5001)
    );
    assert_eq!(
        watch.hit(0x30_0000, 2, true),
        None,
        "a write of a read watch"
    );
    let access = PageWatch::new(vec![Piece {
        phys: 0x100,
        len: 1,
        lin: 0x100,
        kind: WatchKind::Access,
    }]);
    assert_eq!(access.hit(0x100, 1, true), stop(WatchKind::Write, 0x100));
    assert_eq!(access.hit(0x100, 1, false), stop(WatchKind::Read, 0x100));
}

#[test]
fn serving_an_exit_does_the_access_on_guest_memory() {
    let mut ram = vec![0u8; 0x3000];
    let mut rom = vec![0xaau8; 0x1000];
    let slots = [
        slot(0, 0x3000, ram.as_mut_ptr() as u64, false),
        slot(0xf_0000, 0x1000, rom.as_mut_ptr() as u64, true),
    ];
    let watch = PageWatch::new(vec![
        Piece {
            phys: 0x1008,
            len: 4,
            lin: 0x1008,
            kind: WatchKind::Write,
        },
        Piece {
            phys: 0xf_0000,
            len: 4,
            lin: 0xf_0000,
            kind: WatchKind::Access,
        },
    ]);
    let data = [0x34, 0x12, 0, 0];
    assert_eq!(
        watch.serve_write(&slots, 0x1008, &data),
        Served::Hit(DebugStop::Watch {
            kind: WatchKind::Write,
            addr: 0x1008
        })
    );
    assert_eq!(ram[0x1008..0x100c], [0x34, 0x12, 0, 0]);
    let word = [1, 2];
    assert_eq!(watch.serve_write(&slots, 0x1ffe, &word), Served::Quiet);
    assert_eq!(ram[0x1ffe..0x2000], [1, 2]);
    let mut back = [0u8; 2];
    assert_eq!(watch.serve_read(&slots, 0x1ffe, &mut back), Served::Quiet);
    assert_eq!(back, [1, 2]);
    assert_eq!(watch.serve_write(&slots, 0x2000, &back), Served::NotOurs);
    assert_eq!(
        ram[0x2000], 0,
        "a page that is not guarded is left to the board"
    );
    // ROM: reads come from the image, writes are dropped (and still watched).
    let mut r = [0u8; 2];
    assert!(matches!(
        watch.serve_read(&slots, 0xf_0002, &mut r),
        Served::Hit(_)
    ));
    assert_eq!(r, [0xaa, 0xaa]);
    assert!(matches!(
        watch.serve_write(&slots, 0xf_0000, &[0u8; 1]),
        Served::Hit(_)
    ));
    assert_eq!(rom[0], 0xaa);
}

#[test]
fn code_pages_stay_readable_and_keep_catching_writes() {
    let mut watch = PageWatch::new(vec![
        Piece {
            phys: 0x5000,
            len: 4,
            lin: 0x5000,
            kind: WatchKind::Access,
        },
        Piece {
            phys: 0x6000,
            len: 4,
            lin: 0x6000,
            kind: WatchKind::Write,
        },
    ]);
    assert!(!watch.let_code_run(Some(0x6010)), "read-only already");
    assert!(!watch.let_code_run(None));
    assert!(watch.let_code_run(Some(0x5ff0)));
    assert_eq!(watch.guards[&0x5000], Guard::ReadOnly);
    assert!(!watch.let_code_run(Some(0x5ff0)), "once");
    assert!(
        watch.hit(0x5000, 1, true).is_some(),
        "writes are still caught"
    );
}

/// The debugger's page walk reads page tables through the slots' host pointers.
#[test]
fn page_walks_read_guest_memory_through_the_slots() {
    use nestor_cpu::debug::debug_walk;
    use nestor_cpu::state::{cr0, cr4, efer};
    let mut ram = vec![0u8; 0x20_0000];
    let mut put = |at: usize, v: u64| ram[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(0x1000, 0x2003);
    put(0x2008, 0x3003); // PDPTE[1]: 1 GiB
    put(0x3000, 0x4003);
    put(0x4010, 0x1f_f003); // PTE[2] -> the last page of RAM
    let slots = [slot(0, ram.len() as u64, ram.as_mut_ptr() as u64, false)];
    let mut s = nestor_cpu::CpuState::power_on();
    s.cr0 = cr0::PE | cr0::PG;
    s.cr4 = cr4::PAE;
    s.efer = efer::LME | efer::LMA;
    s.cr3 = 0x1000;
    let walk = debug_walk(&s, &mut SlotMemory(&slots), 0x4000_2abc);
    assert_eq!(walk.paddr, Some(0x1f_fabc), "{walk:?}");
    let missing = debug_walk(&s, &mut SlotMemory(&slots), 0x8000_0000);
    assert_eq!(missing.paddr, None);
}
