//! The serde forms of routes in replies: before version 7 ([`crate::types::route_v1`]), and
//! with each route's origin beside it (versions 6 and 7 on).

use crate::types::{Origin, Route};

/// Routes in their form before version 7 ([`crate::types::route_v1`]).
pub(super) mod routes_v1 {
    use crate::types::{
        route_v1::{AsV1, RouteV1},
        Route,
    };
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(routes: &[Route], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(routes.iter().map(AsV1))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Route>, D::Error> {
        Ok(Vec::<RouteV1>::deserialize(d)?
            .into_iter()
            .map(|r| r.0)
            .collect())
    }
}

/// A route (in `$form`) and its origin, as one (a route's own serde form has no origin).
macro_rules! with_origin {
    ($one:ident, $many:ident, $form:ty, $wrap:expr, $unwrap:expr) => {
        pub(super) mod $one {
            use super::{Origin, Route};
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            pub fn serialize<S: Serializer>(r: &Route, s: S) -> Result<S::Ok, S::Error> {
                ($wrap(r), r.origin).serialize(s)
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Route, D::Error> {
                let (r, origin) = <($form, Origin)>::deserialize(d)?;
                let mut r: Route = $unwrap(r);
                r.origin = origin;
                Ok(r)
            }
        }

        pub(super) mod $many {
            use super::{Origin, Route};
            use serde::{Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(routes: &[Route], s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(routes.iter().map(|r| ($wrap(r), r.origin)))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Route>, D::Error> {
                let pairs = Vec::<($form, Origin)>::deserialize(d)?;
                Ok(pairs
                    .into_iter()
                    .map(|(r, origin)| {
                        let mut r: Route = $unwrap(r);
                        r.origin = origin;
                        r
                    })
                    .collect())
            }
        }
    };
}

with_origin!(
    route_with_origin_v1,
    routes_with_origin_v1,
    crate::types::route_v1::RouteV1,
    crate::types::route_v1::AsV1,
    |r: crate::types::route_v1::RouteV1| r.0
);
with_origin!(
    route_with_origin,
    routes_with_origin,
    Route,
    std::convert::identity,
    |r: Route| r
);
