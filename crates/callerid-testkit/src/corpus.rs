//! The shared cgroup corpus (`shared/corpus/cgroup-cases.jsonl`) as the classifier
//! benchmarks use it.

/// Every distinct cgroup path in `inputs` (each a `/proc/<pid>/cgroup` text or a bare
/// path): the path part of `hierarchy:controllers:path` lines and lines that are paths
/// themselves, sorted, without empties or repeats.
pub fn cgroup_paths<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut paths: Vec<String> = inputs
        .into_iter()
        .flat_map(str::lines)
        .map(str::trim)
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(_), Some(p)) if h.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(p.to_owned())
                }
                _ if l.starts_with('/') => Some(l.to_owned()),
                _ => None,
            }
        })
        .filter(|p| !p.is_empty())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
