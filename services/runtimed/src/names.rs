//! Container names: validation and Docker-style generated names.

use rand::seq::IndexedRandom;

const LEFT: [&str; 16] = [
    "admiring", "brave", "calm", "clever", "eager", "focused", "gallant", "happy", "jolly", "keen",
    "lucid", "modest", "nifty", "quirky", "serene", "vibrant",
];
const RIGHT: [&str; 16] = [
    "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "lovelace", "noether",
    "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow",
];

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<(), String> {
    let mut b = name.bytes();
    let ok = name.len() >= 2
        && name.len() <= 128
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

/// A random `adjective_scientist` name, with a number after a few tries.
pub fn generate(attempt: u32) -> String {
    let mut rng = rand::rng();
    let l = LEFT.choose(&mut rng).copied().unwrap_or("calm");
    let r = RIGHT.choose(&mut rng).copied().unwrap_or("turing");
    if attempt < 3 {
        format!("{l}_{r}")
    } else {
        format!("{l}_{r}{}", rand::random::<u16>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate("web-1").is_ok());
        assert!(validate(&generate(0)).is_ok());
        for bad in ["", "a", "-x", "a/b", "a b"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
