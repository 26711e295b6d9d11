//! Amazon ECS, EC2 and Fargate launch types.
//!
//! - EC2: `/ecs/<task-or-cluster>/<H64>` or `/ecs/<cluster>/<task>/<H64>`.
//! - Fargate platform ≤ 1.3: `/ecs/<task UUID>/<H64>`.
//! - Fargate platform ≥ 1.4: the container id is `<32hex task>-<digits>`, found as
//!   `/ecs/<32hex>/<32hex>-<digits>` or `/ecs/<32hex>-<digits>`.
//! - A 64-hex id may carry a `.scope` suffix.
//!
//! Chain: the task, when the path names one (a 32-hex or UUID component, or the
//! 32-hex prefix of a Fargate ≥ 1.4 container id), as kind `sandbox` with runtime
//! `ecs`; then the container. A cluster or task-definition name is not a task id and
//! gives no sandbox element. Whatever runs inside (docker, EKS-on-Fargate's kubepods)
//! follows in the chain, so the innermost id wins.
//!
//! Only 64-hex ids are lowercased (DESIGN.md §4); task ids and Fargate ≥ 1.4 ids are
//! reported as the path spells them.
//!
//! `ecs` at an anchored position whose layout does not fit stops the walk.

use super::shape::{id64_suffixed, is_hex, is_uuid};
use super::walk::{Cx, Family, Found, Scheme, Tail};
use super::{ChainElement, Kind, Runtime};
use std::borrow::Cow;

pub(crate) struct Ecs;

/// `<32hex>-<digits>`, the Fargate ≥ 1.4 container id; returns the task part.
fn fargate14(c: &str) -> Option<&str> {
    let (task, n) = c.split_once('-')?;
    (task.len() == 32
        && is_hex(task)
        && !n.is_empty()
        && n.len() <= 20
        && n.bytes().all(|b| b.is_ascii_digit()))
    .then_some(task)
}

fn task_like(c: &str) -> bool {
    (c.len() == 32 && is_hex(c)) || is_uuid(c)
}

fn task(id: &str) -> ChainElement<'_> {
    ChainElement {
        kind: Kind::Sandbox,
        runtime: Runtime::Ecs,
        id: Cow::Borrowed(id),
    }
}

fn container(id: Cow<'_, str>) -> ChainElement<'_> {
    ChainElement {
        kind: Kind::Container,
        runtime: Runtime::Ecs,
        id,
    }
}

fn found<'a>(
    consumed: usize,
    task_el: Option<ChainElement<'a>>,
    c: ChainElement<'a>,
) -> Scheme<'a> {
    Scheme::Found(Found {
        consumed,
        elements: [task_el, Some(c)],
        pod: None,
        tail: Tail::Systemish,
    })
}

impl Family for Ecs {
    fn context_words(&self) -> &'static [&'static str] {
        &["ecs"]
    }

    fn scheme<'a>(&self, cx: &Cx<'_, 'a>, i: usize, anchored: bool) -> Scheme<'a> {
        if cx.comps[i] != "ecs" {
            return Scheme::No;
        }
        let rest = &cx.comps[i + 1..];
        if let Some(a) = rest.first()
            && let Some(t) = fargate14(a)
        {
            return found(2, Some(task(t)), container(Cow::Borrowed(a)));
        }
        if let [t, a, ..] = rest {
            if fargate14(a).is_some() && task_like(t) {
                return found(3, Some(task(t)), container(Cow::Borrowed(a)));
            }
            if let Some(id) = id64_suffixed(a) {
                return found(3, task_like(t).then(|| task(t)), container(id));
            }
        }
        if let [_cluster, t, a, ..] = rest
            && task_like(t)
            && let Some(id) = id64_suffixed(a)
        {
            return found(4, Some(task(t)), container(id));
        }
        if anchored { Scheme::Stop } else { Scheme::No }
    }
}
