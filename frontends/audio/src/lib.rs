//! Host audio and gamepad for Nestor's frontends. The machine's [`nestor_sound::Mixer`] renders
//! sound against virtual time; this crate carries it out of the process: into a WAV file
//! ([`WavWriter`], for tests and recordings) or to the host's sound card through cpal
//! ([`open_host_output`]). It also feeds the game port from the host's gamepads through
//! gilrs ([`spawn_gamepad_thread`]). With no sound card or no gamepad, each says so in one log
//! line and the machine runs on.

mod gamepad;
mod host;
mod wav;

pub use gamepad::{spawn_gamepad_thread, GamepadThread};
pub use host::{open_host_output, HostOutput};
pub use wav::{read_wav, Wav, WavError, WavWriter};
