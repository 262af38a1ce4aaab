//! Staff roles: what each member of the provider's staff may do is decided
//! by the server from these, route by route.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    Supervisor,
    Finance,
    Compliance,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Agent, Role::Supervisor, Role::Finance, Role::Compliance, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Finance => "finance",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}
