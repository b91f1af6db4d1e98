"""Understanding recurrent networks: recording gates and states (``record``), the size and cost
calculator (``size``), gradient flow, ablations, attributions and checkpoint inspection.
Built only on the public layers below (DESIGN section 1)."""

from .recording import LayerRecord, Recorder, record

__all__ = ["LayerRecord", "Recorder", "record"]
