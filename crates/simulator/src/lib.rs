//! Simulator: the synthetic patient (venous anatomy, X-ray cine projection, physiology) with
//! ground truth, for tests, the demo and trainee practice. Filled by issue 3.
