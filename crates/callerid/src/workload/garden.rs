//! Cloud Foundry garden: `/garden/<id>`, also under `/system.slice/garden.service/`.
//! The id is garden's `8-4-4-4-4` hex handle (28 characters); the full 36-character
//! UUID form is accepted too, both reported as the path spells them. Chain: one
//! container, runtime `garden`.
//! `garden` at an anchored position with no valid id below stops the walk.

use super::shape::is_uuid;
use super::walk::{Cx, Family, Found, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Garden;

fn is_garden_handle(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 28
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl Family for Garden {
    fn context_words(&self) -> &'static [&'static str] {
        &["garden"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        if cx.comps[i] != "garden" {
            return Scheme::No;
        }
        match cx.get(i + 1) {
            Some(id) if is_garden_handle(id) || is_uuid(id) => Scheme::Found(Found::one(
                2,
                ChainElement {
                    kind: Kind::Container,
                    runtime: Runtime::Garden,
                    id: Cow::Borrowed(id),
                },
                Tail::Any,
            )),
            _ if anchored => Scheme::Stop,
            _ => Scheme::No,
        }
    }
}
