//! Desktop sandboxes, kind `app` (never containers).
//!
//! - flatpak: `app-flatpak-<appid>-<n>.scope`; id = the app id.
//! - snap: `snap.<name>.<app>-<uuid>.scope`, older `snap.<name>.<app>.<uuid>.scope`,
//!   and snap daemons `snap.<name>.<app>.service`; id = `<name>.<app>` (the snap's
//!   confinement label without the `snap.` prefix).
//!
//! Other desktop scopes (`app-gnome-*.scope`, `vte-spawn-<uuid>.scope`) are plain
//! user units: their UUIDs are not workload ids and nothing here matches them.

use super::shape::{is_uuid, systemd_unescape};
use super::walk::{Family, Leaf, Tail};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Desktop;

fn app(runtime: Runtime, id: Cow<'_, str>) -> Leaf<'_> {
    Leaf::Element {
        element: ChainElement {
            kind: Kind::App,
            runtime,
            id,
        },
        suffixed: true,
        sandbox_when_bare: false,
        tail: Tail::Any,
    }
}

fn flatpak(comp: &str) -> Option<Leaf<'_>> {
    let rest = comp.strip_prefix("app-flatpak-")?.strip_suffix(".scope")?;
    let (appid, n) = rest.rsplit_once('-')?;
    (!appid.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| app(Runtime::Flatpak, systemd_unescape(appid)))
}

fn snap(comp: &str) -> Option<Leaf<'_>> {
    let rest = comp.strip_prefix("snap.")?;
    let label = if let Some(r) = rest.strip_suffix(".scope") {
        let cut = r.len().checked_sub(37)?;
        // An ASCII separator byte at `cut` makes `cut` and `cut + 1` char boundaries.
        let sep = *r.as_bytes().get(cut)?;
        if !matches!(sep, b'-' | b'.') || !is_uuid(&r[cut + 1..]) {
            return None;
        }
        &r[..cut]
    } else {
        rest.strip_suffix(".service")?
    };
    let (name, app_name) = label.split_once('.')?;
    (!name.is_empty() && !app_name.is_empty()).then(|| app(Runtime::Snap, systemd_unescape(label)))
}

impl Family for Desktop {
    fn leaf<'a>(&self, comp: &'a str) -> Option<Leaf<'a>> {
        flatpak(comp).or_else(|| snap(comp))
    }
}
