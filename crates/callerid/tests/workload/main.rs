//! The pure workload classifier against real-world inputs: the public corpus as a
//! table test, one case per naming scheme, and property tests.

mod corpus;
mod props;
mod schemes;
