"""The bus: the ZeroMQ socket every tick and monitoring message goes out on, its CURVE keys and
who may subscribe, and the typed messages of its system topics."""
