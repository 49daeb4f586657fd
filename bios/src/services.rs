//! The contract between the ROM and the host side: service numbers, the status a service
//! hands back to its stub, the stub kinds, and the fixed places in the image.
//!
//! This file is compiled twice: into the library and into the build script (`build.rs`
//! includes it with `#[path]`), so it depends on nothing but `core`.
//!
//! # How a service is reached
//!
//! Every BIOS entry point is a stub in the ROM that pushes EDX and EAX, then executes
//! `mov dx, 0x404; mov al, SERVICE; out dx, al`. The machine stops the CPU after that `OUT`
//! and calls [`crate::Bios::handle_trap`] with the service number. At that moment the stack
//! holds the [`Frame`] layout below: the caller's EAX and EDX, then what `INT` pushed.
//! The host side works on the CPU registers (EAX and EDX loaded from the frame), writes EAX,
//! EDX and the returned FLAGS back into the frame, and leaves a [`status`] in the live AL:
//! the stub pops EDX/EAX and returns with `IRET`, or waits and traps again.
//!
//! # Service numbers
//!
//! A service that is a software interrupt has the number of its vector; the rest sit where
//! no BIOS vector does.
//!
//! | number | service                                             | stub kind            |
//! |--------|-----------------------------------------------------|----------------------|
//! | 0x01   | POST (everything before the option ROMs)            | called from POST code |
//! | 0x02   | next option ROM to initialise (BX = segment, 0 = done) | called from POST code |
//! | 0x08   | IRQ 0 timer: tick count, floppy motor, then INT 1Ch | timer                |
//! | 0x09   | IRQ 1 keyboard: AH = scan code after INT 15h/4Fh    | keyboard             |
//! | 0x0E   | IRQ 6 floppy                                        | IRQ                  |
//! | 0x10   | INT 10h video and VBE                               | software             |
//! | 0x11   | INT 11h equipment list                              | software             |
//! | 0x12   | INT 12h conventional memory size                    | software             |
//! | 0x13   | INT 13h disks (also INT 40h)                        | software             |
//! | 0x14   | INT 14h serial ports                                | software             |
//! | 0x15   | INT 15h system services                             | software             |
//! | 0x16   | INT 16h keyboard                                    | software             |
//! | 0x17   | INT 17h printer                                     | software             |
//! | 0x18   | INT 18h boot failure (then the ROM halts)            | boot failure         |
//! | 0x19   | INT 19h bootstrap                                   | boot                 |
//! | 0x1A   | INT 1Ah time of day, RTC, PCI BIOS                  | software             |
//! | 0x70   | IRQ 8 RTC                                           | IRQ                  |
//! | 0x74   | IRQ 12 PS/2 mouse                                   | IRQ                  |
//! | 0x76   | IRQ 14 primary IDE                                  | IRQ                  |
//! | 0x77   | IRQ 15 secondary IDE                                | IRQ                  |
//! | 0xB1   | PCI BIOS 32-bit entry (flat protected mode, `RETF`) | 32-bit               |

/// The I/O port whose write traps to the host side.
pub const TRAP_PORT: u16 = 0x404;

/// Service numbers: the byte a stub writes to [`TRAP_PORT`].
pub mod svc {
    pub const POST: u8 = 0x01;
    pub const OPTION_ROM: u8 = 0x02;
    pub const IRQ0_TIMER: u8 = 0x08;
    pub const IRQ1_KEYBOARD: u8 = 0x09;
    pub const IRQ6_FLOPPY: u8 = 0x0E;
    pub const VIDEO: u8 = 0x10;
    pub const EQUIPMENT: u8 = 0x11;
    pub const MEMORY_SIZE: u8 = 0x12;
    pub const DISK: u8 = 0x13;
    pub const SERIAL: u8 = 0x14;
    pub const SYSTEM: u8 = 0x15;
    pub const KEYBOARD: u8 = 0x16;
    pub const PRINTER: u8 = 0x17;
    pub const BOOT_FAILED: u8 = 0x18;
    pub const BOOT: u8 = 0x19;
    pub const CLOCK: u8 = 0x1A;
    pub const IRQ8_RTC: u8 = 0x70;
    pub const IRQ12_MOUSE: u8 = 0x74;
    pub const IRQ14_IDE0: u8 = 0x76;
    pub const IRQ15_IDE1: u8 = 0x77;
    pub const PCI32: u8 = 0xB1;
}

/// What a service leaves in the live AL for its stub.
pub mod status {
    /// Done: pop EAX/EDX from the frame and return.
    pub const DONE: u8 = 0;
    /// Not yet (waiting for a key, a floppy interrupt, the end of a delay): `sti; hlt`, then
    /// trap again with the same frame.
    pub const WAIT_IRQ: u8 = 1;
    /// A device is busy: trap again at once (time moves on while the stub runs).
    pub const RETRY: u8 = 2;
    /// INT 19h only: nothing booted, go to INT 18h.
    pub const BOOT_FAILED: u8 = 3;
}

/// The stack at trap time for every 16-bit stub (offsets from SS:SP).
pub mod frame {
    pub const EAX: u64 = 0;
    pub const EDX: u64 = 4;
    pub const IP: u64 = 8;
    pub const CS: u64 = 10;
    pub const FLAGS: u64 = 12;
    pub const SIZE: u64 = 14;
}

/// How a stub is built around its trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubKind {
    /// Software interrupt (or a far call after PUSHF): trap loop, then IRET.
    Soft,
    /// Hardware interrupt: the host side sends the EOI.
    Irq,
    /// IRQ 0: trap, then INT 1Ch.
    Timer,
    /// IRQ 1: read port 0x60, offer the code to INT 15h/4Fh, trap with AH = the code.
    Keyboard,
    /// INT 19h: status [`status::BOOT_FAILED`] goes on to INT 18h.
    Boot,
    /// INT 18h: trap, then halt for good.
    BootFailed,
    /// 32-bit protected-mode far-call entry (PCI BIOS): no status loop; returns with RETF and
    /// the flags the host side left in the live RFLAGS.
    Pm32,
}

/// One stub: its service, the vectors that point at it, and its kind.
#[derive(Clone, Copy, Debug)]
pub struct Stub {
    pub service: u8,
    pub vectors: &'static [u8],
    pub kind: StubKind,
}

/// Every stub the ROM has, in the order they are assembled.
pub const STUBS: &[Stub] = &[
    stub(svc::OPTION_ROM, &[], StubKind::Soft),
    stub(svc::POST, &[], StubKind::Soft),
    stub(svc::IRQ0_TIMER, &[0x08], StubKind::Timer),
    stub(svc::IRQ1_KEYBOARD, &[0x09], StubKind::Keyboard),
    stub(svc::IRQ6_FLOPPY, &[0x0E], StubKind::Irq),
    stub(svc::VIDEO, &[0x10], StubKind::Soft),
    stub(svc::EQUIPMENT, &[0x11], StubKind::Soft),
    stub(svc::MEMORY_SIZE, &[0x12], StubKind::Soft),
    stub(svc::DISK, &[0x13, 0x40], StubKind::Soft),
    stub(svc::SERIAL, &[0x14], StubKind::Soft),
    stub(svc::SYSTEM, &[0x15], StubKind::Soft),
    stub(svc::KEYBOARD, &[0x16], StubKind::Soft),
    stub(svc::PRINTER, &[0x17], StubKind::Soft),
    stub(svc::BOOT_FAILED, &[0x18], StubKind::BootFailed),
    stub(svc::BOOT, &[0x19], StubKind::Boot),
    stub(svc::CLOCK, &[0x1A], StubKind::Soft),
    stub(svc::IRQ8_RTC, &[0x70], StubKind::Irq),
    stub(svc::IRQ12_MOUSE, &[0x74], StubKind::Irq),
    stub(svc::IRQ14_IDE0, &[0x76], StubKind::Irq),
    stub(svc::IRQ15_IDE1, &[0x77], StubKind::Irq),
    stub(svc::PCI32, &[], StubKind::Pm32),
];

const fn stub(service: u8, vectors: &'static [u8], kind: StubKind) -> Stub {
    Stub {
        service,
        vectors,
        kind,
    }
}

/// Image layout. The image is [`ROM_SIZE`] bytes mapped at [`ROM_BASE`] (and again just
/// below 4 GiB); offsets named `F_*` are offsets in segment F000 (image offset + 0x10000).
pub mod layout {
    /// Size of the image: 128 KiB.
    pub const ROM_SIZE: usize = 0x2_0000;
    /// Physical address of image offset 0.
    pub const ROM_BASE: u32 = 0xE_0000;
    /// Image offset of segment F000.
    pub const F_SEG_IMAGE: usize = 0x1_0000;
    /// Zero-filled room for tables the host side writes at POST (SMBIOS and MP entry points,
    /// when the platform lets the firmware write its own shadow copy).
    pub const F_TABLES: u16 = 0x0000;
    pub const F_TABLES_SIZE: u16 = 0x1000;
    /// Main code: stubs, POST, default handlers.
    pub const F_CODE: u16 = 0x1000;
    pub const F_CODE_END: u16 = 0x5000;
    /// Static data: VBE strings and mode list, BIOS32 directory.
    pub const F_DATA: u16 = 0x5000;
    pub const F_DATA_END: u16 = 0x6000;
    /// 8x16 font, 256 characters.
    pub const F_FONT_8X16: u16 = 0x6000;
    /// 8x14 font, 256 characters.
    pub const F_FONT_8X14: u16 = 0x7000;
    /// 8x8 font, 256 characters (INT 43h; INT 1Fh points at its upper half).
    pub const F_FONT_8X8: u16 = 0x7E00;
    /// Where the PC/AT put its entry points; each holds a near jump (or data) there.
    pub const F_POST: u16 = 0xE05B;
    pub const F_NMI: u16 = 0xE2C3;
    pub const F_INT13: u16 = 0xE3FE;
    pub const F_INT19: u16 = 0xE6F2;
    /// INT 15h/C0h system configuration table.
    pub const F_CONFIG_TABLE: u16 = 0xE6F5;
    pub const F_INT14: u16 = 0xE739;
    pub const F_INT16: u16 = 0xE82E;
    pub const F_INT09: u16 = 0xE987;
    pub const F_INT40: u16 = 0xEC59;
    pub const F_INT0E: u16 = 0xEF57;
    /// Diskette parameter table (INT 1Eh).
    pub const F_DISKETTE_TABLE: u16 = 0xEFC7;
    pub const F_INT17: u16 = 0xEFD2;
    pub const F_INT10: u16 = 0xF065;
    pub const F_INT12: u16 = 0xF841;
    pub const F_INT11: u16 = 0xF84D;
    pub const F_INT15: u16 = 0xF859;
    /// 8x8 font, characters 0x00..=0x7F.
    pub const F_FONT_8X8_LOW: u16 = 0xFA6E;
    pub const F_INT1A: u16 = 0xFE6E;
    pub const F_INT08: u16 = 0xFEA5;
    /// A lone IRET: the default for every vector nobody serves.
    pub const F_IRET: u16 = 0xFF53;
    pub const F_INT05: u16 = 0xFF54;
    pub const F_RESET: u16 = 0xFFF0;
    pub const F_DATE: u16 = 0xFFF5;
    pub const F_MODEL: u16 = 0xFFFE;
    /// PC/AT model byte.
    pub const MODEL_BYTE: u8 = 0xFC;
    /// Release date at F000:FFF5.
    pub const DATE: &[u8; 8] = b"01/01/26";
    /// Stack the POST code runs on (SS = 0).
    pub const POST_STACK: u16 = 0x7000;
}
