//! x
pub struct DoctorReport; pub fn probe() -> DoctorReport { DoctorReport }
