#!/usr/bin/env python3
"""Writes the hidden-layer study's depth family, networks/study/depth/*.toml.

Plain and residual networks of the same 3x3 convolutions, side by side: a stem
convolution (1 -> C channels) at 28x28, then B blocks of two convolutions, the
first half of the blocks (rounded up) at 28x28 and the rest at 14x14 after a
2x2 max pool, a last 2x2 max pool to 7x7 and a dense layer of 10 classes. Every convolution
is followed by batchnorm (ReLU after it, but in a residual block's second one,
whose ReLU comes after the sum). A residual block adds its input to its output
(an identity shortcut: the channels never change, so no projection is needed);
a plain block is the same two convolutions without the sum. So a network has
1 + 2B convolutions (B = 1, 2, 4, 8: 3, 5, 9 and 17), and a plain network and
its residual twin have the same parameters and multiplies.

Usage: scripts/depth_networks.py [OUT_DIR]   (default: networks/study/depth)
"""
import os
import sys

DEPTHS = [1, 2, 4, 8]         # blocks: 3, 5, 9, 17 convolutions
WIDTH = 16                    # channels of every convolution
WIDTHS_AT_DEPTH = (4, [8, 32])  # the width axis: residual, 4 blocks, these widths besides WIDTH

HEADER = """[network]
name = "{name}"
description = "{description}"

[input]
width = 28
height = 28
channels = 1
classes = 10
mean = 0.1307
std = 0.3081
"""

# The study's recipe, as in every file of networks/study/.
RECIPE = """
# The study's recipe, the same in every file of networks/study/.
[train]
epochs = 4
batch = 64
optimizer = "adam"
learning_rate = 0.002
lr_schedule = "cosine"
weight_decay = 0.0
seed = 1
"""


def conv(name, width, input_name=None):
    lines = ["", "[[layer]]", 'type = "conv"', f'name = "{name}"']
    if input_name:
        lines.append(f'input = "{input_name}"')
    lines += [f"filters = {width}", "kernel = 3", 'padding = "same"']
    return lines


def batchnorm(name, relu):
    return ["", "[[layer]]", 'type = "batchnorm"', f'name = "{name}"'] + (['activation = "relu"'] if relu else [])


def write_network(out_dir, blocks, width, residual):
    kind = "residual" if residual else "plain"
    name = f"{kind}{1 + 2 * blocks}" + ("" if width == WIDTH else f"-w{width}")
    description = (f"Depth axis, {kind}: a stem convolution and {blocks} {kind} block(s) of two 3x3 convolutions "
                   f"with batchnorm ({1 + 2 * blocks} convolutions of {width} channels), 2x2 max pooling after "
                   "the first half of the blocks and after the last, dense 10 on 7x7"
                   + (", identity shortcuts around each block" if residual else ""))
    lines = HEADER.format(name=name, description=description).splitlines()
    lines += conv("stem", width) + batchnorm("stem_bn", True)
    last = "stem_bn"
    first_half = (blocks + 1) // 2
    for b in range(1, blocks + 1):
        block_input = last
        lines += conv(f"b{b}_conv1", width, block_input) + batchnorm(f"b{b}_bn1", True)
        lines += conv(f"b{b}_conv2", width) + batchnorm(f"b{b}_bn2", not residual)
        last = f"b{b}_bn2"
        if residual:
            lines += ["", "[[layer]]", 'type = "add"', f'name = "b{b}"', f'inputs = ["{last}", "{block_input}"]',
                      'activation = "relu"']
            last = f"b{b}"
        if b == first_half:
            lines += ["", "[[layer]]", 'type = "maxpool"', 'name = "pool1"', f'input = "{last}"', "size = 2"]
            last = "pool1"
    lines += ["", "[[layer]]", 'type = "maxpool"', 'name = "pool_out"', f'input = "{last}"', "size = 2"]
    lines += ["", "[[layer]]", 'type = "dense"', 'name = "classes"', "units = 10"]
    with open(os.path.join(out_dir, name + ".toml"), "w") as f:
        f.write("# Written by scripts/depth_networks.py: edit that, not this.\n")
        f.write("\n".join(lines) + "\n" + RECIPE)
    return name


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "networks", "study",
                                                                  "depth")
    os.makedirs(out_dir, exist_ok=True)
    names = [write_network(out_dir, b, WIDTH, residual) for residual in (False, True) for b in DEPTHS]
    blocks, widths = WIDTHS_AT_DEPTH
    names += [write_network(out_dir, blocks, w, True) for w in widths]
    print("\n".join(names))


if __name__ == "__main__":
    main()
