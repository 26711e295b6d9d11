//! 10 k idle connections held open through a gate.
