use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("saved state has version {found}, this model reads version {expected}")]
    Version { expected: u32, found: u32 },
    #[error("saved state is damaged: {0}")]
    Decode(String),
    #[error("state could not be encoded: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_limit::<{ 16 << 20 }>()
}

/// Encode a device state struct together with its version number.
pub fn save_state<T: Serialize>(version: u32, state: &T) -> Result<Vec<u8>, StateError> {
    bincode::serde::encode_to_vec((version, state), config())
        .map_err(|e| StateError::Encode(e.to_string()))
}

/// Decode a state saved by [`save_state`], refusing another version or trailing garbage.
pub fn restore_state<T: DeserializeOwned>(version: u32, bytes: &[u8]) -> Result<T, StateError> {
    let (found, _): (u32, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| StateError::Decode(e.to_string()))?;
    if found != version {
        return Err(StateError::Version {
            expected: version,
            found,
        });
    }
    let ((_, state), used): ((u32, T), usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| StateError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(StateError::Decode(format!(
            "{} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Example {
        a: u8,
        b: Vec<u16>,
    }

    #[test]
    fn round_trip_and_version_check() {
        let s = Example {
            a: 7,
            b: vec![1, 2],
        };
        let bytes = save_state(3, &s).unwrap();
        assert_eq!(restore_state::<Example>(3, &bytes).unwrap(), s);
        assert_eq!(
            restore_state::<Example>(4, &bytes),
            Err(StateError::Version {
                expected: 4,
                found: 3
            })
        );
        assert!(restore_state::<Example>(3, &bytes[..bytes.len() - 1]).is_err());
        assert!(restore_state::<Example>(3, &[0xff; 40]).is_err());
    }
}
