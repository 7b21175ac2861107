//! Enumerations a user picks by name — on the command line, in Python, in query parameters — so
//! the library names its values once and every front end offers the same words.

/// A closed set of named values.
pub trait Choice: Sized + Copy + Send + Sync + 'static {
    /// Every value, in the order they are documented.
    const ALL: &'static [Self];

    /// The value's name.
    fn name(self) -> &'static str;

    /// The value called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// Every name, in order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }

    /// The value called `name`, or an error listing the choices.
    fn parse_name(name: &str, what: &str) -> crate::error::Result<Self> {
        Self::from_name(name).ok_or_else(|| {
            crate::error::Error::Usage(format!(
                "unknown {what} `{name}`: choose one of {}",
                Self::names().join(", ")
            ))
        })
    }
}

/// Implements [`Choice`] for an enum with an inherent `name(self) -> &'static str`.
macro_rules! impl_choice {
    ($t:ty, [$($v:expr),* $(,)?]) => {
        impl $crate::choice::Choice for $t {
            const ALL: &'static [Self] = &[$($v),*];
            fn name(self) -> &'static str {
                <$t>::name(self)
            }
        }
    };
}
pub(crate) use impl_choice;
