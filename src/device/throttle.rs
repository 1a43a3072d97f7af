//! NVML clocks-event (throttle) reasons: bits, names, and which ones make a
//! measurement untrustworthy. Shared by `doctor` and the monitor.

/// NVML clocks-event (throttle) reason bits, as in `nvml.h`.
pub mod reason {
    pub const GPU_IDLE: u64 = 0x1;
    pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
    pub const SW_POWER_CAP: u64 = 0x4;
    pub const HW_SLOWDOWN: u64 = 0x8;
    pub const SYNC_BOOST: u64 = 0x10;
    pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
    pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
    pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
    pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;
}

const NAMES: [(u64, &str); 9] = [
    (reason::GPU_IDLE, "gpu_idle"),
    (
        reason::APPLICATIONS_CLOCKS_SETTING,
        "applications_clocks_setting",
    ),
    (reason::SW_POWER_CAP, "sw_power_cap"),
    (reason::HW_SLOWDOWN, "hw_slowdown"),
    (reason::SYNC_BOOST, "sync_boost"),
    (reason::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
    (reason::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
    (reason::HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake_slowdown"),
    (reason::DISPLAY_CLOCK_SETTING, "display_clock_setting"),
];

/// Reasons that make a measurement untrustworthy: the GPU slowed itself
/// because of heat or a hardware power event.
pub const INVALIDATING: [&str; 4] = [
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_slowdown",
    "hw_power_brake_slowdown",
];

/// Names of the bits set in an NVML throttle-reason mask.
pub fn throttle_names(bits: u64) -> Vec<&'static str> {
    let mut v: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    let known: u64 = NAMES.iter().map(|(b, _)| b).sum();
    if bits & !known != 0 {
        v.push("other");
    }
    v
}
