"""ngspice behavioural subcircuits of the memjax compact models and of the MIF neuron.

Each state variable lives on an internal node as the voltage of a 1 F capacitor charged
by a behavioural current source whose current is its time derivative (the integrator of
Knowm's MSS subcircuit, Molter & Nugent, CNNA 2016); port currents are B-sources.
"""

from __future__ import annotations

__all__ = ["HP_SUBCKT", "MMSS_SUBCKT", "MIF_SUBCKT"]

#: HP linear ion drift (Strukov et al., Nature 2008) with the Joglekar window
#: ``F(x) = 1 - (2x - 1)^(2p)`` (Joglekar & Wolf, Eur. J. Phys. 2009); mirrors
#: `memjax.devices.HPMemristor`: ``i = v / (R_on x + R_off (1 - x))``,
#: ``dx/dt = mu_v R_on / D^2 i F(x)``.
HP_SUBCKT = """\
.subckt hpmem p n ron=100 roff=16e3 d=10e-9 uv=1e-14 wp=1 x0=0.1
Cx x 0 1 IC={x0}
Bx 0 x I={uv*ron/(d*d) * v(p,n)/(ron*v(x)+roff*(1-v(x))) * (1-pow(pow(2*v(x)-1,2),wp))}
Bm p n I={v(p,n)/(ron*v(x)+roff*(1-v(x)))}
.ends hpmem"""

#: Mean metastable switch with the Schottky branch (Molter & Nugent, CNNA 2016); mirrors
#: `memjax.devices.MMSSMemristor`: ``dx/dt = ((1 - x) P_on(v) - x P_off(v)) / tau``,
#: ``i = phi v (x / R_on + (1 - x) / R_off) + (1 - phi)(a_f e^(b_f v) - a_r e^(-b_r v))``.
MMSS_SUBCKT = """\
.subckt mmss p n ron=500 roff=1500 von=0.27 voff=0.27 tau=1e-4 vt=0.025722 phi=1
+ af=1e-6 bf=3 ar=1e-6 br=3 x0=0
Cx x 0 1 IC={x0}
Bx 0 x I={((1-v(x))/(1+exp(-(v(p,n)-von)/vt)) - v(x)/(1+exp((v(p,n)+voff)/vt)))/tau}
Bm p n I={phi*v(p,n)*(v(x)/ron+(1-v(x))/roff) + (1-phi)*(af*exp(bf*v(p,n))-ar*exp(-br*v(p,n)))}
.ends mmss"""

#: Memristive integrate-and-fire neuron (Zhou, Eshraghian et al., MEMprop, IEEE JETCAS
#: 2022); mirrors `memjax.neurons.mif.mif_vector_field`:
#: ``tau_a da/dt = i_in - a``, ``tau_a dI/dt = a - I``,
#: ``C dv/dt = I - G1(x1)(v - E1) - G2(x2)(v - E2)``,
#: ``dx_k/dt = ((1 - x_k) P_on(V_k) - x_k P_off(V_k)) / tau_k``, ``V_k = s_k (v - E_k)``.
#: Port ``in``: the input current as a voltage in units of ``iscale`` amperes (1 V =
#: ``iscale`` A); port ``m``: the membrane. The filter currents ``a``, ``I`` (in units of
#: ``iscale``) and ``x1``, ``x2`` are 1 F capacitor voltages; the batteries are voltage
#: sources and each memristor a B-source between the membrane and its battery.
MIF_SUBCKT = """\
.subckt mif in m c=1e-9 e1=-0.025 e2=0.025 taua=1e-3 iscale=1e-6
+ ron1=1e3 roff1=1e5 von1=0.11 voff1=-0.005 tau1=1e-3 vt1=0.015 s1=1
+ ron2=1e3 roff2=1e5 von2=0.11 voff2=-0.005 tau2=1e-3 vt2=0.015 s2=-1
+ v0=0 x10=0.0238 x20=0.0238 a0=0 i0=0
Ca a 0 1 IC={a0}
Ba 0 a I={(v(in) - v(a))/taua}
Ci i 0 1 IC={i0}
Bi 0 i I={(v(a) - v(i))/taua}
Cm m 0 {c} IC={v0}
Bin 0 m I={iscale*v(i)}
V1 b1 0 DC {e1}
V2 b2 0 DC {e2}
B1 m b1 I={(v(x1)/ron1 + (1 - v(x1))/roff1)*v(m,b1)}
B2 m b2 I={(v(x2)/ron2 + (1 - v(x2))/roff2)*v(m,b2)}
Cx1 x1 0 1 IC={x10}
Bx1 0 x1 I={((1 - v(x1))/(1 + exp(-(s1*v(m,b1) - von1)/vt1))
+ - v(x1)/(1 + exp((s1*v(m,b1) + voff1)/vt1)))/tau1}
Cx2 x2 0 1 IC={x20}
Bx2 0 x2 I={((1 - v(x2))/(1 + exp(-(s2*v(m,b2) - von2)/vt2))
+ - v(x2)/(1 + exp((s2*v(m,b2) + voff2)/vt2)))/tau2}
.ends mif"""
