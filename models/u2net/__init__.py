"""U-2-Net (``u2net``) and U-2-Net-lite (``u2netp``) for salient object detection."""
from models import register_model, register_spec
from models.u2net.src.u2net import U2Net, build_u2net


@register_model
def u2net(in_channels: int = 3, out_channels: int = 1, return_logits: bool = False,
          numerics: str = "authors") -> U2Net:
    return build_u2net("u2net", in_channels, out_channels, return_logits, numerics)


@register_model
def u2netp(in_channels: int = 3, out_channels: int = 1, return_logits: bool = False,
           numerics: str = "authors") -> U2Net:
    return build_u2net("u2netp", in_channels, out_channels, return_logits, numerics)


from models.u2net.src.spec import SPEC

register_spec(SPEC)
