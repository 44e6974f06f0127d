"""WebSocket framing below the libraries' public APIs: frames written in batches, messages joined
from fragments, and the picows socket a broker connection reads."""
