//! `USER:GROUP` for socket ownership: numbers, or names looked up in `/etc/passwd` and
//! `/etc/group` (local files only: a daemon that may start before the network must not
//! wait on a directory service to set up its socket).

use crate::error::Error;

/// Numeric owner of a socket file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Owning user; `None` leaves it unchanged.
    pub uid: Option<u32>,
    /// Owning group; `None` leaves it unchanged.
    pub gid: Option<u32>,
}

impl Owner {
    /// Parses `USER`, `USER:GROUP` or `:GROUP`, each a name or a number.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        Self::parse_with(spec, "/etc/passwd", "/etc/group")
    }

    fn parse_with(spec: &str, passwd: &str, group: &str) -> Result<Self, Error> {
        let err = |message: String| Error::Owner {
            spec: spec.to_string(),
            message,
        };
        let (user, grp) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let uid = if user.is_empty() {
            None
        } else {
            Some(lookup(user, passwd).map_err(err)?)
        };
        let gid = match grp {
            None | Some("") => None,
            Some(g) => Some(lookup(g, group).map_err(err)?),
        };
        if uid.is_none() && gid.is_none() {
            return Err(err("names neither a user nor a group".into()));
        }
        Ok(Self { uid, gid })
    }
}

/// A number, or the third field of the `name:` line of a passwd/group file.
fn lookup(name: &str, file: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("read {file}: {e}"))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| format!("{name:?} not found in {file}"))?
        .parse::<u32>()
        .map_err(|e| format!("bad id for {name:?} in {file}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("passwd");
        let gr = dir.path().join("group");
        std::fs::write(
            &pw,
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(&gr, "root:x:0:\ndocker:x:998:alice\n").unwrap();
        let p = pw.to_str().unwrap();
        let g = gr.to_str().unwrap();
        assert_eq!(
            Owner::parse_with("alice:docker", p, g).unwrap(),
            Owner {
                uid: Some(1000),
                gid: Some(998)
            }
        );
        assert_eq!(
            Owner::parse_with(":docker", p, g).unwrap(),
            Owner {
                uid: None,
                gid: Some(998)
            }
        );
        assert_eq!(
            Owner::parse_with("5:6", p, g).unwrap(),
            Owner {
                uid: Some(5),
                gid: Some(6)
            }
        );
        assert!(Owner::parse_with("bob", p, g).is_err());
        assert!(Owner::parse_with(":", p, g).is_err());
    }
}
