//! WebSockets: the flood client (`client`), the reference inference server
//! (`server`), the robustness checks (`checks`) and the wire format they and
//! third-party echo servers share (`protocol`).

pub mod checks;
pub mod client;
pub mod protocol;
pub mod server;
