"""Plain-torch re-implementations of the DeiT/ViT module structures that
timm, torchvision and Hugging Face export to ONNX.

timm / transformers are not installable here, so these classes copy their
module layout (parameter names, op order inside forward) closely enough that
torch.onnx.export produces the same graph patterns the real libraries do.
That matters because pqvc pattern-matches those graphs.

Shared by scripts/export_deit.py and scripts/train_fmnist.py.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# name -> (embed_dim, num_heads); depth 12 and MLP ratio 4 for all of them.
SIZES = {
    "tiny": (192, 3),
    "small": (384, 6),
    "base": (768, 12),
}

# Head dim used by the "timm_narrow" style: attention width H*D != embed E.
NARROW_HEAD_DIM = 48


# --------------------------------------------------------------------------
# timm style (timm.models.vision_transformer.VisionTransformer, pre-SDPA path)
# --------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """timm PatchEmbed: conv with stride=kernel=patch, then flatten(2).transpose(1, 2)."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.Identity()

    def forward(self, x):
        x = self.proj(x)
        x = x.flatten(2).transpose(1, 2)  # B, C, H, W -> B, N, C
        return self.norm(x)


class Attention(nn.Module):
    """timm Attention (explicit matmul path, as in timm <= 0.6 / fused_attn=False).

    qkv_split selects how q, k, v are taken from the packed tensor:
      "index"  -> qkv[0], qkv[1], qkv[2]   (exports as Gather x3)
      "unbind" -> qkv.unbind(0)            (exports as Split + Squeeze)
    head_dim lets the attention width (H*D) differ from the embedding width
    (used by the "timm_narrow" style); None means E // H like timm.
    """

    def __init__(self, dim, num_heads=8, qkv_bias=True, head_dim=None, qkv_split="index"):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim if head_dim is not None else dim // num_heads
        self.attn_dim = self.num_heads * self.head_dim
        self.scale = self.head_dim ** -0.5
        self.qkv_split = qkv_split
        self.qkv = nn.Linear(dim, self.attn_dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(self.attn_dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.qkv_split == "unbind":
            q, k, v = qkv.unbind(0)
        else:
            q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        # timm reshapes to C; with a narrow head dim the width is H*D instead.
        x = (attn @ v).transpose(1, 2).reshape(B, N, self.attn_dim)
        x = self.proj(x)
        return self.proj_drop(x)


class Mlp(nn.Module):
    """timm Mlp: fc1 -> GELU (erf) -> fc2."""

    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(0.0)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(0.0)

    def forward(self, x):
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(x))


class Block(nn.Module):
    """timm pre-norm block; DropPath/LayerScale are Identity at inference."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, head_dim=None, qkv_split="index"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, head_dim=head_dim, qkv_split=qkv_split)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    """timm VisionTransformer / DeiT (non-distilled): cls token, learned pos embed,
    class token pooling, Linear head. State-dict names match timm."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000,
                 embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 head_dim=None, qkv_split="index"):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, head_dim=head_dim, qkv_split=qkv_split)
            for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        timm_init_(self)

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        return self.norm(x)

    def forward(self, x):
        x = self.forward_features(x)
        return self.head(x[:, 0])


# --------------------------------------------------------------------------
# Hugging Face style (transformers DeiTForImageClassificationWithTeacher)
# --------------------------------------------------------------------------


class DeiTPatchEmbeddings(nn.Module):
    def __init__(self, image_size, patch_size, num_channels, hidden_size):
        super().__init__()
        self.num_patches = (image_size // patch_size) ** 2
        self.projection = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, pixel_values):
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


class DeiTEmbeddings(nn.Module):
    """cls + distillation tokens, position_embeddings of length N+2."""

    def __init__(self, image_size, patch_size, num_channels, hidden_size):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.patch_embeddings = DeiTPatchEmbeddings(image_size, patch_size, num_channels, hidden_size)
        n = self.patch_embeddings.num_patches
        self.position_embeddings = nn.Parameter(torch.zeros(1, n + 2, hidden_size))
        self.dropout = nn.Dropout(0.0)

    def forward(self, pixel_values):
        embeddings = self.patch_embeddings(pixel_values)
        batch_size, _seq_length, _ = embeddings.size()
        cls_tokens = self.cls_token.expand(batch_size, -1, -1)
        distillation_tokens = self.distillation_token.expand(batch_size, -1, -1)
        embeddings = torch.cat((cls_tokens, distillation_tokens, embeddings), dim=1)
        embeddings = embeddings + self.position_embeddings
        return self.dropout(embeddings)


class DeiTSelfAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.num_attention_heads = num_heads
        self.attention_head_size = hidden_size // num_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(hidden_size, self.all_head_size)
        self.key = nn.Linear(hidden_size, self.all_head_size)
        self.value = nn.Linear(hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(0.0)

    def transpose_for_scores(self, x):
        # HF builds the shape from x.size(), which is what puts Shape/Gather/
        # Concat chains in front of every Reshape in HF exports.
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states):
        mixed_query_layer = self.query(hidden_states)
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        query_layer = self.transpose_for_scores(mixed_query_layer)
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        attention_probs = nn.functional.softmax(attention_scores, dim=-1)
        attention_probs = self.dropout(attention_probs)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        return context_layer.view(new_context_layer_shape)


class DeiTSelfOutput(nn.Module):
    # HF: dense + dropout here; the residual is added in DeiTLayer.
    def __init__(self, hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(0.0)

    def forward(self, hidden_states, input_tensor):
        return self.dropout(self.dense(hidden_states))


class DeiTAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.attention = DeiTSelfAttention(hidden_size, num_heads)
        self.output = DeiTSelfOutput(hidden_size)

    def forward(self, hidden_states):
        return self.output(self.attention(hidden_states), hidden_states)


class DeiTIntermediate(nn.Module):
    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        self.intermediate_act_fn = nn.GELU()  # HF "gelu" = exact erf GELU

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class DeiTOutput(nn.Module):
    def __init__(self, hidden_size, intermediate_size):
        super().__init__()
        self.dense = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(0.0)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return hidden_states + input_tensor


class DeiTLayer(nn.Module):
    def __init__(self, hidden_size, num_heads, intermediate_size, eps=1e-12):
        super().__init__()
        self.attention = DeiTAttention(hidden_size, num_heads)
        self.intermediate = DeiTIntermediate(hidden_size, intermediate_size)
        self.output = DeiTOutput(hidden_size, intermediate_size)
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=eps)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, hidden_states):
        attention_output = self.attention(self.layernorm_before(hidden_states))
        hidden_states = attention_output + hidden_states  # first residual
        layer_output = self.layernorm_after(hidden_states)
        layer_output = self.intermediate(layer_output)
        return self.output(layer_output, hidden_states)  # second residual inside


class DeiTEncoder(nn.Module):
    def __init__(self, hidden_size, num_heads, intermediate_size, depth):
        super().__init__()
        self.layer = nn.ModuleList([
            DeiTLayer(hidden_size, num_heads, intermediate_size) for _ in range(depth)
        ])

    def forward(self, hidden_states):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states)
        return hidden_states


class DeiTModel(nn.Module):
    """HF DeiTModel(add_pooling_layer=False)."""

    def __init__(self, image_size, patch_size, num_channels, hidden_size, num_heads,
                 intermediate_size, depth):
        super().__init__()
        self.embeddings = DeiTEmbeddings(image_size, patch_size, num_channels, hidden_size)
        self.encoder = DeiTEncoder(hidden_size, num_heads, intermediate_size, depth)
        self.layernorm = nn.LayerNorm(hidden_size, eps=1e-12)

    def forward(self, pixel_values):
        return self.layernorm(self.encoder(self.embeddings(pixel_values)))


class DeiTForImageClassificationWithTeacher(nn.Module):
    """HF distilled DeiT: logits = (cls_classifier(tok0) + distillation_classifier(tok1)) / 2."""

    def __init__(self, image_size=224, patch_size=16, num_channels=3, hidden_size=768,
                 num_heads=12, intermediate_size=3072, depth=12, num_labels=1000):
        super().__init__()
        self.deit = DeiTModel(image_size, patch_size, num_channels, hidden_size, num_heads,
                              intermediate_size, depth)
        self.cls_classifier = nn.Linear(hidden_size, num_labels)
        self.distillation_classifier = nn.Linear(hidden_size, num_labels)
        timm_init_(self)

    def forward(self, pixel_values):
        sequence_output = self.deit(pixel_values)
        cls_logits = self.cls_classifier(sequence_output[:, 0, :])
        distillation_logits = self.distillation_classifier(sequence_output[:, 1, :])
        return (cls_logits + distillation_logits) / 2


# --------------------------------------------------------------------------
# init + builders
# --------------------------------------------------------------------------


_TOKEN_PARAM_NAMES = ("cls_token", "pos_embed", "distillation_token", "position_embeddings",
                      "class_token", "pos_embedding")


def timm_init_(model):
    """timm-like init: trunc_normal(std .02) on Linear weights (incl. the packed
    in_proj of nn.MultiheadAttention) and on cls/dist/pos tokens, zero biases,
    LayerNorm ones/zeros. Conv patch embedding keeps torch's default init.

    Applied to the torchvision model too: its own init zeroes the head, which
    would make every logit 0 and the sample comparison meaningless."""
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _TOKEN_PARAM_NAMES:
            nn.init.trunc_normal_(p, std=0.02)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            nn.init.zeros_(m.in_proj_bias)


def build_model(style, size=None, embed=None, heads=None, depth=12, mlp_ratio=4.0,
                image=224, patch=16, classes=1000, in_chans=3, head_dim=None):
    """Build one model. Either `size` (tiny/small/base) or explicit embed/heads.

    Returns (model, cfg) where cfg records the shape facts that the sidecar
    JSON needs. Parameter init must already have been seeded by the caller."""
    if size is not None:
        embed, heads = SIZES[size]
    if style == "timm_narrow" and head_dim is None:
        head_dim = NARROW_HEAD_DIM
    if head_dim is None:
        head_dim = embed // heads
    mlp_hidden = int(embed * mlp_ratio)
    if style in ("timm", "timm_unbind", "timm_narrow"):
        model = VisionTransformer(
            img_size=image, patch_size=patch, in_chans=in_chans, num_classes=classes,
            embed_dim=embed, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio,
            head_dim=head_dim, qkv_split="unbind" if style == "timm_unbind" else "index")
    elif style == "torchvision":
        assert in_chans == 3 and head_dim == embed // heads, "torchvision ViT is fixed to RGB, D=E/H"
        from torchvision.models.vision_transformer import VisionTransformer as TVViT
        model = TVViT(image_size=image, patch_size=patch, num_layers=depth, num_heads=heads,
                      hidden_dim=embed, mlp_dim=mlp_hidden, num_classes=classes)
        timm_init_(model)
    elif style == "hf":
        assert head_dim == embed // heads, "HF DeiT has D=E/H"
        model = DeiTForImageClassificationWithTeacher(
            image_size=image, patch_size=patch, num_channels=in_chans, hidden_size=embed,
            num_heads=heads, intermediate_size=mlp_hidden, depth=depth, num_labels=classes)
    else:
        raise ValueError(f"unknown style {style!r}")
    cfg = dict(style=style, size=size, embed=embed, heads=heads, head_dim=head_dim,
               attn_dim=heads * head_dim, depth=depth, mlp_hidden=mlp_hidden,
               image=image, patch=patch, in_chans=in_chans, classes=classes,
               tokens=(image // patch) ** 2 + (2 if style == "hf" else 1),
               params=count_params(model))
    return model, cfg


def count_params(model):
    return sum(p.numel() for p in model.parameters())
