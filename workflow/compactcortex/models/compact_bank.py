"""A bank of single-neuron compact students trained as one network (docs/method.md section 4).

Each neuron gets its own compact model; trained one by one, a GPU runs hundreds of tiny kernels per step for each of
them. ``StudentBank`` stacks N students of the same image size into one network whose every layer is a single
(grouped) convolution over all students' channels, so a chunk of neurons costs one step per batch:

* layer 0: one ``Conv2d(3, N * F0)`` (the input is shared), BatchNorm over the N * F0 channels;
* layers 1-4: a depthwise ``Conv2d(N * F, N * F, groups=N * F)``, a pointwise ``Conv2d(N * F_in, N * F_out, 1,
  groups=N)`` (student i's block only sees its own channels), BatchNorm;
* the readout ``Beta``: one weight row (last map flattened channels last) and one bias per student.

BatchNorm normalises each channel over the batch, and a channel belongs to one student, so the bank computes, in
training and in eval mode, exactly what its students compute one by one; with ``per_output_mse`` as the loss each
student's gradient is its own, and Adam (elementwise) takes the steps it would take for each student alone.

Students may have different filter counts (after pruning): every layer is padded to the largest count, the padded
weights are zero, and a mask zeroes the padded channels right after each BatchNorm, so they compute nothing, get
zero gradients, and stay zero under Adam. Module names are the ``CompactModel``'s (``layers.layer0_conv``,
``layers.layerK_conv_depth``, ...), so ``distill``, ``smooth_depthwise_kernels_`` and ``recalibrate_batchnorm_``
take a bank as they take a single student.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from compactcortex.models.compact import (
    BN_EPS,
    DATASET_MEANS,
    IMAGE_SIZE,
    KERNEL_SIZE,
    N_LAYERS,
    STRIDE2_PADDING,
    STRIDES,
    CompactModel,
    _check_filters,
    prepare_pixels,
)

# student -> its tensor matching a slice of the bank (see StudentBank._slices)
_Getter = Callable[[CompactModel], torch.Tensor]


class BankReadout(nn.Module):
    """Per-student linear readouts: ``weight`` (N, side * side * F), ``bias`` (N,), F the bank's last-layer width.

    Student i's row is its ``Beta.weight`` in (row, column, channel) order, zero at its padded channels.
    """

    def __init__(self, n_students: int, map_size: int, n_channels: int) -> None:
        super().__init__()
        self.map_size = int(map_size)
        self.n_channels = int(n_channels)
        self.weight = nn.Parameter(torch.zeros(n_students, map_size * map_size * n_channels))
        self.bias = nn.Parameter(torch.zeros(n_students))

    def forward(self, last_map: torch.Tensor) -> torch.Tensor:
        """(batch, N * F, side, side) -> (batch, N): student i reads only its own F channels."""
        n, side, f = self.weight.shape[0], self.map_size, self.n_channels
        x = last_map.unflatten(1, (n, f))  # (batch, N, F, side, side); a view in either memory format
        weight = self.weight.view(n, side, side, f)
        return torch.einsum("bnchw,nhwc->bn", x, weight) + self.bias


class StudentBank(nn.Module):
    """N single-output compact students of the same ``image_size``, means and BatchNorm epsilon, as one network.

    Input: (batch, 3, S, S), as a ``CompactModel``'s (see ``preprocess``). Output: (batch, N), column i student i's.
    Build one with ``from_students``; get the trained students back with ``to_students``.
    """

    def __init__(
        self,
        student_filters: Sequence[Sequence[int]],
        image_size: int = IMAGE_SIZE,
        means: Sequence[float] = DATASET_MEANS,
        bn_eps: float = BN_EPS,
    ) -> None:
        """A bank with zero weights (BatchNorm: zero scale and shift, unit running variance) for students of the
        given filter counts; ``from_students`` fills it."""
        super().__init__()
        if len(student_filters) == 0:
            raise ValueError("a student bank needs at least one student")
        self.student_filters = [_check_filters(filters) for filters in student_filters]
        if image_size <= 0 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4 (two stride-2 stages), got {image_size}")
        if len(means) != 3:
            raise ValueError(f"means must hold one value per RGB channel, got {len(means)}")
        self.image_size = int(image_size)
        self.n_outputs = len(self.student_filters)
        self.bn_eps = float(bn_eps)
        self._means = tuple(float(m) for m in means)
        # the attributes CompactModel.preprocess reads (see preprocess)
        self.register_buffer("means", torch.tensor(self._means), persistent=False)
        self._filters = tuple(max(filters[k] for filters in self.student_filters) for k in range(N_LAYERS))
        # Which layers have padded channels: only those multiply by their mask.
        self._padded = tuple(
            any(filters[k] < self._filters[k] for filters in self.student_filters) for k in range(N_LAYERS)
        )
        for k in range(N_LAYERS):
            self.register_buffer(f"mask{k}", self._channel_mask(k), persistent=False)
        self.layers = _build_bank_layers(self._filters, self.n_outputs, self.map_size, self.bn_eps)
        _zero_(self)

    @property
    def filters(self) -> tuple[int, ...]:
        """The bank's filters per student and layer: the largest count over the students."""
        return self._filters

    @property
    def map_size(self) -> int:
        """Side of the last feature map (image_size / 4)."""
        return self.image_size // 4

    def _channel_mask(self, layer: int) -> torch.Tensor:
        width = self._filters[layer]
        mask = torch.zeros(self.n_outputs, width)
        for i, filters in enumerate(self.student_filters):
            mask[i, : filters[layer]] = 1
        return mask.flatten()

    def mask(self, layer: int) -> torch.Tensor:
        """1 on layer ``layer``'s real channels, 0 on the padded ones: (N * F,), student-major."""
        return getattr(self, f"mask{layer}")

    def _masked(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        if not self._padded[layer]:
            return x
        return x * self.mask(layer).to(x.dtype).view(1, -1, 1, 1)

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five stages' outputs (after BatchNorm and ReLU), channels first, (batch, N * F, side, side) each:
        student i's maps are channels [i * F, i * F + f_i) (the rest are zero).

        ``x`` is (batch, 3, S, S), one image all students see, or (batch, N, 3, S, S), an image per student (image
        synthesis): layer 0 is then a grouped convolution with the same weights.
        """
        side = (self.image_size, self.image_size)
        layers = self.layers
        if x.ndim == 5 and tuple(x.shape[1:]) == (self.n_outputs, 3, *side):
            conv = layers["layer0_conv"]
            x = F.conv2d(x.flatten(1, 2), conv.weight, conv.bias, padding=KERNEL_SIZE // 2, groups=self.n_outputs)
        elif x.ndim == 4 and tuple(x.shape[1:]) == (3, *side):
            x = layers["layer0_conv"](x)
        else:
            expected = f"(batch, 3, {side[0]}, {side[1]}) or (batch, {self.n_outputs}, 3, {side[0]}, {side[1]})"
            raise ValueError(f"expected input {expected}, got {tuple(x.shape)}")
        # in-place ReLU: BatchNorm's backward needs its input, not its output (saves one map per layer)
        x = F.relu(self._masked(layers["layer0_bn"](x), 0), inplace=True)
        outputs = [x]
        for k in range(1, N_LAYERS):
            if STRIDES[k] == 2:
                x = F.pad(x, STRIDE2_PADDING)
            x = layers[f"layer{k}_conv_depth"](x)
            x = F.relu(self._masked(layers[f"layer{k}_bn"](layers[f"layer{k}_conv_point"](x)), k), inplace=True)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers["Beta"](self.layer_outputs(x)[-1])

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 images (n, H, W, 3) -> the input (n, 3, S, S), exactly as ``CompactModel.preprocess``."""
        # The bank holds the attributes CompactModel.preprocess reads (image_size, _means, the means buffer).
        return CompactModel.preprocess(self, images)  # type: ignore[arg-type]

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        """Float pixels (n, 3, H, W) -> the input, differentiably, as ``CompactModel.prepare``."""
        return prepare_pixels(pixels, self.image_size, self._means)

    def n_parameters(self) -> int:
        """Trainable parameters of the bank, padding included."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @classmethod
    @torch.no_grad()
    def from_students(cls, students: Sequence[CompactModel]) -> StudentBank:
        """A bank computing exactly what ``students`` (single-output, same image size, means and BatchNorm epsilon)
        compute, on the first student's device and dtype, in training mode if every student is.

        BatchNorm momenta must agree per layer. A BatchNorm's ``num_batches_tracked`` is one counter in the bank:
        it takes the largest over the students (it only matters with momentum None, i.e. during recalibration).
        """
        students = list(students)
        if not students:
            raise ValueError("a student bank needs at least one student, got an empty list")
        first = students[0]
        for i, student in enumerate(students):
            if not isinstance(student, CompactModel):
                raise ValueError(f"student {i} is a {type(student).__name__}, not a CompactModel")
            if student.n_outputs != 1:
                raise ValueError(f"student {i} has {student.n_outputs} outputs; a bank holds single-output students")
            if student.image_size != first.image_size:
                sizes = f"student 0 has {first.image_size}, student {i} {student.image_size}"
                raise ValueError(f"students must share image_size: {sizes}")
            if student._means != first._means or student.bn_eps != first.bn_eps:
                raise ValueError(f"students must share means and bn_eps: student {i} differs from student 0")
        parameter = next(first.parameters())
        bank = cls([s.filters for s in students], first.image_size, first._means, first.bn_eps)
        bank.to(device=parameter.device, dtype=parameter.dtype)
        layers = bank.layers
        for k in range(N_LAYERS):
            momenta = {s.layers[f"layer{k}_bn"].momentum for s in students}
            if len(momenta) != 1:
                raise ValueError(f"students' layer{k}_bn momenta differ: {sorted(momenta, key=str)}")
            layers[f"layer{k}_bn"].momentum = momenta.pop()
            tracked = max(int(s.layers[f"layer{k}_bn"].num_batches_tracked) for s in students)
            layers[f"layer{k}_bn"].num_batches_tracked.fill_(tracked)
        for i, student in enumerate(students):
            for bank_slice, student_slice in bank._slices(i):
                bank_slice.copy_(student_slice(student))
        return bank.train(all(s.training for s in students))

    @torch.no_grad()
    def to_students(self) -> list[CompactModel]:
        """The students, each a ``CompactModel`` with only its real filters and the bank's weights and BatchNorm
        statistics, on the bank's device and dtype, in the bank's mode."""
        parameter = next(self.parameters())
        students = []
        for i, filters in enumerate(self.student_filters):
            student = CompactModel(filters, self.image_size, 1, self._means, self.bn_eps)
            student.to(device=parameter.device, dtype=parameter.dtype)
            for bank_slice, student_slice in self._slices(i):
                student_slice(student).copy_(bank_slice)
            for k in range(N_LAYERS):
                bn, bank_bn = student.layers[f"layer{k}_bn"], self.layers[f"layer{k}_bn"]
                bn.num_batches_tracked.copy_(bank_bn.num_batches_tracked)
                bn.momentum = bank_bn.momentum
            students.append(student.train(self.training))
        return students

    def _slices(self, i: int) -> list[tuple[torch.Tensor, _Getter]]:
        """Student i's part of every bank tensor (a view), each with a getter of the matching tensor of a student."""
        layers, filters, width = self.layers, self.student_filters[i], self._filters

        def part(module: str, attribute: str, layer: int, n_inputs: int | None = None) -> tuple[torch.Tensor, _Getter]:
            """Rows of student i's channels of ``layer`` (and, for the grouped pointwise weight (N * F_out, F_in, 1,
            1), its first ``n_inputs`` input channels)."""
            rows = slice(i * width[layer], i * width[layer] + filters[layer])
            tensor = getattr(layers[module], attribute)
            view = tensor[rows] if n_inputs is None else tensor[rows, :n_inputs]
            return view, lambda student: getattr(student.layers[module], attribute)

        parts = [part("layer0_conv", "weight", 0), part("layer0_conv", "bias", 0)]
        for k in range(N_LAYERS):
            parts += [part(f"layer{k}_bn", name, k) for name in ("weight", "bias", "running_mean", "running_var")]
            if k > 0:
                parts.append(part(f"layer{k}_conv_depth", "weight", k - 1))
                parts.append(part(f"layer{k}_conv_point", "weight", k, n_inputs=filters[k - 1]))
                parts.append(part(f"layer{k}_conv_point", "bias", k))
        side = self.map_size
        beta = layers["Beta"].weight[i].view(side, side, width[-1])[:, :, : filters[-1]]
        parts.append((beta, lambda student: student.layers["Beta"].weight.view(side, side, filters[-1])))
        parts.append((layers["Beta"].bias[i : i + 1], lambda student: student.layers["Beta"].bias))
        return parts


def _build_bank_layers(filters: tuple[int, ...], n: int, map_size: int, bn_eps: float) -> nn.ModuleDict:
    layers: dict[str, nn.Module] = {
        "layer0_conv": nn.Conv2d(3, n * filters[0], KERNEL_SIZE, padding=KERNEL_SIZE // 2),
        "layer0_bn": nn.BatchNorm2d(n * filters[0], eps=bn_eps),
    }
    for k in range(1, N_LAYERS):
        f_in, f_out = n * filters[k - 1], n * filters[k]
        padding = 0 if STRIDES[k] == 2 else KERNEL_SIZE // 2  # stride 2: padded explicitly in layer_outputs
        layers[f"layer{k}_conv_depth"] = nn.Conv2d(
            f_in, f_in, KERNEL_SIZE, stride=STRIDES[k], padding=padding, groups=f_in, bias=False
        )
        layers[f"layer{k}_conv_point"] = nn.Conv2d(f_in, f_out, 1, groups=n)
        layers[f"layer{k}_bn"] = nn.BatchNorm2d(f_out, eps=bn_eps)
    layers["Beta"] = BankReadout(n, map_size, filters[-1])
    return nn.ModuleDict(layers)


@torch.no_grad()
def _zero_(bank: StudentBank) -> None:
    """Every weight and BatchNorm scale and shift zero, running statistics reset (mean 0, variance 1)."""
    for parameter in bank.parameters():
        parameter.zero_()
    for module in bank.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
