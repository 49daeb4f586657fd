//! Physical addresses of the BIOS data area (segment 0x40), the EBDA and other fixed places
//! in low memory. A map: not every field is used by the code.
#![allow(dead_code)]

pub const IVT: u64 = 0x000;
pub const BDA: u64 = 0x400;
/// COM1..COM4 base ports (words).
pub const COM_PORTS: u64 = 0x400;
/// LPT1..LPT3 base ports (words).
pub const LPT_PORTS: u64 = 0x408;
/// EBDA segment (word).
pub const EBDA_SEG: u64 = 0x40E;
/// Equipment word.
pub const EQUIPMENT: u64 = 0x410;
/// Conventional memory in KiB (word).
pub const MEM_KIB: u64 = 0x413;
/// Keyboard shift flags 1 and 2.
pub const KBD_FLAGS1: u64 = 0x417;
pub const KBD_FLAGS2: u64 = 0x418;
/// Alt+keypad accumulator.
pub const KBD_ALT_NUM: u64 = 0x419;
/// Keyboard buffer head and tail (offsets from 0x400).
pub const KBD_HEAD: u64 = 0x41A;
pub const KBD_TAIL: u64 = 0x41C;
/// Default keyboard buffer: 16 words.
pub const KBD_BUFFER: u16 = 0x1E;
pub const KBD_BUFFER_END: u16 = 0x3E;
/// Floppy: recalibrate status (bit 7 = interrupt seen), motor status, motor-off counter,
/// last status, controller result bytes.
pub const FD_RECAL: u64 = 0x43E;
pub const FD_MOTOR: u64 = 0x43F;
pub const FD_MOTOR_TICKS: u64 = 0x440;
pub const FD_STATUS: u64 = 0x441;
pub const FD_RESULT: u64 = 0x442;
/// Video: mode, columns, page size, page start, cursor positions (8 words), cursor shape,
/// active page, CRTC base port, mode control, palette.
pub const VIDEO_MODE: u64 = 0x449;
pub const VIDEO_COLS: u64 = 0x44A;
pub const VIDEO_PAGE_SIZE: u64 = 0x44C;
pub const VIDEO_PAGE_START: u64 = 0x44E;
pub const CURSOR_POS: u64 = 0x450;
pub const CURSOR_SHAPE: u64 = 0x460;
pub const VIDEO_PAGE: u64 = 0x462;
pub const CRTC_BASE: u64 = 0x463;
pub const VIDEO_MSR: u64 = 0x465;
pub const VIDEO_PAL: u64 = 0x466;
/// Warm-restart far pointer (used with CMOS shutdown codes 5, 9 and 0Ah).
pub const RESET_PTR: u64 = 0x467;
/// Timer ticks since midnight (dword) and the midnight flag.
pub const TICKS: u64 = 0x46C;
pub const MIDNIGHT: u64 = 0x470;
/// Ctrl-Break flag; reset flag (0x1234 = warm boot).
pub const BREAK_FLAG: u64 = 0x471;
pub const RESET_FLAG: u64 = 0x472;
/// Hard disk: last status, number of drives.
pub const HD_STATUS: u64 = 0x474;
pub const HD_COUNT: u64 = 0x475;
/// Printer and serial time-outs.
pub const LPT_TIMEOUT: u64 = 0x478;
pub const COM_TIMEOUT: u64 = 0x47C;
/// Keyboard buffer start and end (offsets from 0x400).
pub const KBD_START: u64 = 0x480;
pub const KBD_END: u64 = 0x482;
/// Video: rows - 1, character height, EGA misc info, switches, VGA flags, DCC index.
pub const VIDEO_ROWS: u64 = 0x484;
pub const CHAR_HEIGHT: u64 = 0x485;
pub const VIDEO_CTL: u64 = 0x487;
pub const VIDEO_SWITCHES: u64 = 0x488;
pub const VIDEO_MODESET_CTL: u64 = 0x489;
pub const VIDEO_DCC: u64 = 0x48A;
/// Floppy: last data rate.
pub const FD_RATE: u64 = 0x48B;
/// Hard disk: status register and error register of the last operation.
pub const HD_LAST_STATUS: u64 = 0x48C;
/// Floppy media state, drives 0 and 1.
pub const FD_MEDIA: u64 = 0x490;
/// Keyboard mode (bit 4: enhanced keyboard, bit 1: last code was E0, bit 0: E1) and LEDs.
pub const KBD_MODE: u64 = 0x496;
pub const KBD_LEDS: u64 = 0x497;
/// Wait-function flag (INT 15h/83h and /86h).
pub const WAIT_FLAG: u64 = 0x4A0;

/// The EBDA: 1 KiB just below 640 KiB.
pub const EBDA: u64 = 0x9_FC00;
pub const EBDA_SEGMENT: u16 = 0x9FC0;
pub const EBDA_KIB: u16 = 1;
/// Conventional memory reported: everything below the EBDA.
pub const CONVENTIONAL_KIB: u16 = 639;
/// In the EBDA: fixed disk parameter tables for drives 80h and 81h (INT 41h, 46h), and the
/// 30-byte EDD device parameter template.
pub const EBDA_FDPT0: u16 = 0x3D;
pub const EBDA_FDPT1: u16 = 0x4D;
/// In the EBDA: where the RSDP goes if the table area in the ROM cannot be written.
pub const EBDA_RSDP: u16 = 0x100;
/// In the EBDA: the MP floating pointer, likewise.
pub const EBDA_MP: u16 = 0x130;
