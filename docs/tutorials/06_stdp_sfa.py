# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Unsupervised learning with STDP and spike-frequency adaptation
#
# A classifier trained on digits 0-4 knows nothing about 5-9, and retraining it with
# labels means collecting labels and risking that it forgets 0-4. Muñoz-Martín et al.
# (VLSI Technology 2020) build a hybrid instead: a convolutional network trained once
# with labels and then frozen extracts features; a layer of spiking neurons with
# memristive synapses learns the *new* classes from an unlabelled stream, with spike-timing
# dependent plasticity (STDP) and a winner-take-all (WTA) competition; and
# spike-frequency adaptation (SFA), stored in an RRAM cell, makes the layer fire fewer
# spikes, which is where a spiking chip spends its energy.
#
# This tutorial runs that pipeline at a small size:
#
# 1. train a small CNN on digits 0-4 (`memjax.recipes.train_cnn`) and freeze it;
# 2. a *novelty gate* decides which images the CNN has not been trained for;
# 3. a WTA layer (`memjax.models.wta.WTALayer`) learns those images with STDP, without labels;
# 4. a few labelled images name its neurons; then the whole system is tested;
# 5. the same layer without SFA, for the spike count.
#
# The paper gives no layer sizes, coding or equations for these parts; the choices here
# are those of memjax's `sfa-continual-mnist` benchmark (see the [SFA guide](../sfa.md)).

# %%
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from memjax.data import load
from memjax.devices import MultiLevelRRAM
from memjax.learning.stdp import STDP
from memjax.models import sfa_snn as M
from memjax.models.wta import WTALayer, wta_respond
from memjax.neurons.alif import ALIF
from memjax.recipes import train_cnn

t_start = time.perf_counter()

# %% [markdown]
# ## Data
#
# The bundled MNIST sample (2,000 training and 1,000 test images) keeps this fast. The
# last `N_VAL` training images are held out: a few of them form the small labelled set,
# the rest calibrate the gate. `FULL = True` uses the full data set and the benchmark's
# sizes.

# %%
FULL = False

source = "auto" if FULL else "sample"
x_train, y_train = load("mnist", "train", source=source)
x_test, y_test = load("mnist", "test", source=source)
x_train = x_train.astype(np.float32) / 255.0
x_test = x_test.astype(np.float32) / 255.0

N_VAL = 10_000 if FULL else 500
val = (x_train[-N_VAL:], y_train[-N_VAL:])
train = (x_train[:-N_VAL], y_train[:-N_VAL])
test = (x_test, y_test)
trained, new = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
print(f"{len(train[0])} training, {len(val[0])} held-out, {len(test[0])} test images")

# %% [markdown]
# ## 1. The CNN, trained with labels on 0-4
#
# Two convolution and pooling stages, a dense layer and a head for the five trained
# classes. `train_cnn` takes only the samples of `trained`; after it, the CNN is frozen.

# %%
cnn, hist = train_cnn(
    train, trained, epochs=3 if FULL else 6, batch_size=64, seed=0, progress=False
)
f_tr, _ = M.cnn_features(cnn, train[0])
f_va, l_va = M.cnn_features(cnn, val[0])
f_te, l_te = M.cnn_features(cnn, test[0])
head_te, _ = M.cnn_predict(l_te, trained)
tm_tr, tm_va, tm_te = (np.isin(y, trained) for y in (train[1], val[1], test[1]))
acc_before = np.mean(head_te[tm_te] == test[1][tm_te])
print(f"CNN head on test images of 0-4: {acc_before:.3f}")

# %% [markdown]
# The inputs of the spiking layer are the CNN's 512 pooled convolution features (more
# generic than the dense layer, which is tuned to separate 0-4 and collapses new digits
# onto them), each divided by its 99th percentile over the trained classes and clipped to
# $[0, 1]$: spike probabilities per time step.

# %%
scale = M.feature_scale(f_tr[tm_tr])
e_tr, e_va, e_te = (M.encode_features(f, scale) for f in (f_tr, f_va, f_te))

# %% [markdown]
# ## 2. Which images are new? A novelty neuron
#
# The stream is unlabelled: the system must decide by itself which images to hand to the
# spiking layer. One extra neuron with a linear score $s(x) = w \cdot x + b$ does it. It
# is fitted by logistic regression to tell the *trained-class* training images (the CNN's
# own data, label 0) from the *unlabelled stream* (label 1). This is positive-unlabelled
# learning: the optimal score is monotone in $p_\mathrm{stream}(x) / p_\mathrm{trained}(x)$,
# high where the stream has mass that 0-4 do not, so no label of a new class is used. The
# threshold is set on held-out 0-4 images so that at most a fraction `MAX_FALSE_ROUTE`
# of them are routed away from the CNN's head: that bounds how much the system can
# forget. The benchmark allows 0.5 % of about 5,000 calibration images; with a few hundred
# here, 2 % is the smallest budget that is more than one or two images.

# %%
rng = np.random.default_rng(0)
stream = rng.permutation(len(e_tr))  # the unlabelled stream: every training image, shuffled
gate = M.fit_novelty_gate(e_tr[tm_tr], e_tr[stream], steps=300 if FULL else 150)
MAX_FALSE_ROUTE = 0.005 if FULL else 0.02
gate = M.calibrate_novelty_gate(gate, e_va[tm_va], max_false_route=MAX_FALSE_ROUTE)
routed_te = gate(e_te)
routed_st = gate(e_tr[stream])
x_learn = e_tr[stream][routed_st]
print(
    f"routed: {routed_te[tm_te].mean():.1%} of test 0-4, {routed_te[~tm_te].mean():.1%} of test 5-9"
)
print(
    f"stream images for the spiking layer: {len(x_learn)}, {np.mean(~np.isin(train[1][stream][routed_st], trained)):.1%} of them new digits"
)

# %% [markdown]
# ## 3. STDP on RRAM synapses, winner-take-all, SFA
#
# Each output neuron is an adaptive leaky integrate-and-fire neuron, integrating the
# input current with a threshold raised by an adaptation conductance $g$:
#
# $$ v_t = \lambda v_{t-1} + I_t, \qquad \vartheta_t = \vartheta_0 + \beta\, g_{t-1}, \qquad
#    s_t = H(v_t - \vartheta_t), \qquad g_t = \mathrm{clip}\Big(g_{t-1} + \frac{s_t}{k - 1}, 0, 1\Big). $$
#
# $g$ is the normalised conductance of a $k$-level RRAM cell: every output spike is one
# SET pulse, one level up, so each spike makes the next harder (spike-frequency
# adaptation); the cell is RESET between images. The input current is the crossbar read
# $I_j = \sum_i x_i G_{ij} / \sum_i G_{ij}$. Only the neuron furthest above threshold
# fires, and all membranes reset (lateral inhibition): winner-take-all.
#
# Learning is stochastic STDP on 16-level synapses: when a neuron fires, each synapse
# whose input spiked in the last step gets a SET pulse (one level up) with probability
# $p_\mathrm{pot}$, every other synapse of that neuron a RESET pulse with probability
# $p_\mathrm{dep}$. A winning neuron's synapses thus move toward the image it won, so
# it wins similar images again: the neurons become prototypes of clusters in the data.
# A homeostatic threshold offset $\vartheta^+$ per win keeps one neuron from winning all.
#
# Thresholds are set relative to the mean input intensity $d_0$, with the benchmark's
# factors ($\vartheta_0 = 4 d_0$, $\beta = 200\,\vartheta_0$ spread over 31 SET steps):

# %%
NEURONS_PER_CLASS = 20 if FULL else 10
N_STEPS = 30 if FULL else 20
d0 = float(e_tr.mean())
theta0 = 4.0 * d0


def make_layer(sfa: bool) -> WTALayer:
    return WTALayer(
        n_in=e_tr.shape[1],
        n_out=NEURONS_PER_CLASS * len(new),
        neuron=ALIF(leak=1.0, theta0=theta0, beta=200.0 * theta0 if sfa else 0.0),
        rule=STDP(window=1, p_pot=0.05, p_dep=0.1),
        synapse=MultiLevelRRAM(n_levels=16, write_sigma=0.0),
        n_steps=N_STEPS,
        p_in=1.0,
        theta_plus=0.05 * theta0,
        homeo_decay=0.002,
    )


# %% [markdown]
# Learn from the routed stream, once with SFA and once without. Learning is online, one
# image after the other; the small sample gives only a few hundred routed images, so
# they are presented `PASSES` times (the full stream needs one). Then present
# `N_LABEL` labelled held-out images per new class and label each neuron with the class
# it responds to most: the only labelled data of the new classes.

# %%
N_LABEL = 50 if FULL else 20
PASSES = 1 if FULL else 3
x_stream = np.concatenate([x_learn] * PASSES)
lab_idx = np.concatenate([np.flatnonzero(val[1] == c)[:N_LABEL] for c in new])
key = jax.random.key(0)
layers = {}
for tag in ("with SFA", "without SFA"):
    layer = make_layer(sfa=tag == "with SFA")
    state = layer.init_state(jax.random.fold_in(key, 0))
    state, learn_out = M.learn_unsupervised(layer, state, x_stream, jax.random.fold_in(key, 1))
    r_lab = M.respond(layer, state, e_va[lab_idx], jax.random.fold_in(key, 2))
    labels = M.label_neurons(r_lab["counts"], val[1][lab_idx])
    layers[tag] = (layer, state, labels, learn_out)
    print(
        f"{tag}: {(labels >= 0).sum()} of {layer.n_out} neurons labelled, {float(np.mean(state.syn.pulses)):.1f} STDP pulses per synapse"
    )

# %% [markdown]
# ## 4. The whole system on the test set
#
# A test image the gate routes is answered by the spiking layer (the label of the neuron
# with most spikes); any other by the frozen CNN head, which never changed. Besides the
# two layers learned above, a third case: the synapses learned *without* SFA, run *with*
# it (SFA at inference only).

# %%
layers["SFA at inference only"] = (make_layer(sfa=True), *layers["without SFA"][1:])
rn = routed_te & ~tm_te  # new digits the gate hands to the spiking layer
results = {}
for tag, (layer, state, labels, _) in layers.items():
    r_te = M.respond(layer, state, e_te, jax.random.fold_in(key, 3))
    snn_te = M.snn_classify(
        r_te["counts"], r_te["drive"], np.where(np.isin(labels, new), labels, -1)
    )
    pred = M.route(head_te, snn_te, routed_te)
    rep = M.accuracy_report(pred, test[1], {"trained": trained, "new": new})
    results[tag] = (rep, np.asarray(r_te["spikes"]))
    print(
        f"{tag:>21}: all {rep['all']:.3f} | 0-4 {rep['trained']:.3f} (CNN alone: {acc_before:.3f})"
        f" | 5-9 {rep['new']:.3f}, of which routed ones {np.mean(snn_te[rn] == test[1][rn]):.3f}"
        f" | {r_te['spikes'].mean():.2f} output spikes per image"
    )

fig, ax = plt.subplots(figsize=(8, 3))
for n, (tag, (rep, _)) in enumerate(results.items()):
    ax.bar(
        np.arange(10) + 0.27 * (n - 1),
        [rep["per_class"][c] for c in range(10)],
        width=0.27,
        label=tag,
    )
ax.axvspan(4.5, 9.6, color="grey", alpha=0.1)
ax.text(7, 0.93, "learned without labels", ha="center", fontsize=8)
ax.set(xlabel="digit", ylabel="test accuracy", ylim=(0, 1), xticks=range(10))
ax.legend(fontsize=8, loc="center left")
fig.tight_layout()

# %% [markdown]
# The digits 0-4 keep the CNN's accuracy up to the few the gate routes by mistake. For
# the new digits, two factors multiply: the fraction the gate routes (the others stay
# with the head, which can only answer 0-4), and the layer's accuracy on those it gets,
# i.e. how well the clusters STDP found match the classes. Chance for the layer is 20 %.
#
# ## 5. What SFA saves
#
# The spike trains of one new digit, and the output spikes per image over the test set:

# %%
x_one = e_te[np.flatnonzero(rn)[:1]]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for ax, tag in zip(axes[:2], ("without SFA", "with SFA")):
    layer, state, _, _ = layers[tag]
    raster = np.asarray(
        wta_respond(layer, state, x_one, jax.random.key(5), raster=True)["raster"][0]
    )
    t, n = np.nonzero(raster)
    ax.scatter(t, n, s=80, marker="|")
    ax.set(
        title=f"{tag}: {len(t)} spike" + "s" * (len(t) != 1),
        xlabel="time step",
        ylabel="output neuron",
        xlim=(-0.5, N_STEPS - 0.5),
        ylim=(-1, layer.n_out),
    )
top = max(s.max() for _, s in results.values())
for (tag, (_, s)), ls in zip(results.items(), ("-", "-", "--")):
    axes[2].hist(
        s,
        bins=np.arange(0, top + 2) - 0.5,
        histtype="step",
        lw=1.5,
        ls=ls,
        label=f"{tag} (mean {s.mean():.2f})",
    )
axes[2].set(xlabel="output spikes per test image", ylabel="images")
axes[2].legend(fontsize=8)
fig.tight_layout()
base_rep, base_spikes = results["without SFA"]
for tag in ("with SFA", "SFA at inference only"):
    rep, spikes = results[tag]
    print(
        f"{tag}: {base_spikes.mean() / spikes.mean():.2f}x fewer output spikes,"
        f" accuracy {100 * (rep['all'] - base_rep['all']):+.1f} points"
    )
print(f"total run time {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# Without SFA the winner keeps firing for as long as the image is shown; with SFA each
# spike raises every threshold by $\beta/(k-1)$, so after the first spike or two the
# layer falls silent. The class is decided by the first spikes, so at inference the
# saving costs little.
#
# During learning it costs more here: every output spike triggers one STDP update, so a
# layer learning with SFA makes fewer updates per image (compare the STDP pulses per
# synapse above) and, on a stream of a few hundred images, ends less well trained. On the
# full stream of the benchmark there are enough images for both; see the
# [SFA guide](../sfa.md) for its measured spike cut and accuracy cost. SFA at inference
# only keeps the synapses learned without it and still saves the spikes.
#
# ## What to try next
#
# - Vary the SFA strength (`beta` in `make_layer`: 0, 25, 50, 100, 200 $\vartheta_0$) and
#   plot spikes per image against accuracy, as the `sfa-continual-mnist` benchmark does.
# - Give the gate a hidden layer of novelty neurons, as the benchmarks do:
#   `M.fit_novelty_gate(..., hidden=64, batch_size=512, learning_rate=0.003, steps=6000)`
#   routes more new digits at the same budget (it needs the full stream to pay off).
#   Then fit it again against only the stream images it routes, which are nearly all
#   new, and calibrate again: `M.refit_novelty_gate(gate, e_tr[tm_tr], e_tr[stream],
#   hidden=64, ...)` (the MNIST benchmarks' self-trained gate).
# - Learn with the MNIST benchmarks' imprinted cosine layer: start the columns on the
#   first routed images (`wta_imprint(layer, st, x[:n_out], key)` from
#   `memjax.models.wta`), learn with soft-bound STDP
#   (`STDP(window=1, p_pot=0.1, p_dep=0.1, bounds="soft")`), read by angle
#   (`WTALayer(..., normalize="l2")`) and respond with the homeostatic offsets set to 0
#   (`dataclasses.replace(st, h=jnp.zeros_like(st.h))`).
# - Compare the novelty gate with a label-free one from the trained classes alone:
#   `M.mahalanobis_score(e_tr[tm_tr], train[1][tm_tr])` at the same 0.5 % budget.
# - Use binary synapses (`MultiLevelRRAM(n_levels=2)`) or write noise
#   (`write_sigma=0.02`) and see how the clusters degrade.
# - Fewer new classes (`trained = [0, ..., 7]`) make the clustering easier.
# - Set `FULL = True` for the benchmark's sizes (several minutes), or run
#   `python -m benchmarks run sfa-continual-mnist --quick`.
