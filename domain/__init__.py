"""The pure domain model of seatledger: values, windows and policy, the floor layout, the
service-day assignment aggregate, drift, allocation checks and errors. No I/O, no clock."""
